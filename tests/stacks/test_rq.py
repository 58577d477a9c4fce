"""RQ-only facts on the real Redis: JSON only (a stranger's pickle is never loaded), foreign functions are never
called, what a SIGKILL leaves behind, and the one-line stop on an external Redis without a database of its own.

The delivery contract every stack keeps is in tests/contract/; the hostile corpus (with the RQ job hashes) in
tests/e2e/test_hostile.py.
"""
from __future__ import annotations

import dataclasses
import time

import pytest
from helpers import signups

from queuekit.core.errors import KitError
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.hostile import Hostile, marker, rq_call, touching_pickle
from rq_app import jobs, topology
from rq_app.raw_publisher import RawPublisher
from rq_app.worker import LEASE_GRACE_S


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("rq")


def _send(stack, name: str, frame: dict) -> None:
    RawPublisher(stack).send(Hostile(name, "protocol", "rq", "dead", frame=frame))


def _dead_reason(stack, name: str) -> str:
    found = wait_for(lambda: [d for d in stack.dead_letters("signup") if marker(name).encode() in d.payload],
                     timeout=30, what=f"the dead letter of {name}", describe=lambda: str(stack.dead_letters("signup")))
    return found[0].reason


def test_a_pickled_job_is_never_unpickled(stack, ledger, tmp_path):
    proof = tmp_path / "unpickled"
    stack.start(["signup"], StackOptions(workers=1))
    _send(stack, "rq-pickle-proof", {"data": touching_pickle("rq-pickle-proof", str(proof))})
    [good] = signups(1, 61)
    stack.publish("signup", [good])  # behind it: the worker lives on and takes it

    reason = _dead_reason(stack, "rq-pickle-proof")
    wait_for(lambda: ledger.effects(service="signup"), timeout=30, what="the good job after the pickle")
    stack.drain("signup", timeout=30)
    assert "job data is not JSON (the kit never unpickles)" in reason
    assert not proof.exists()  # unpickling it would have created the file
    assert ledger.attempts(service="signup") == ledger.attempts_for("signup", good.key)  # nothing else ran
    assert stack.pool.alive(0)


def test_a_job_naming_a_foreign_function_or_callback_runs_nothing(stack, ledger, tmp_path):
    proof = tmp_path / "called"
    stack.start(["signup"], StackOptions(workers=1))
    _send(stack, "rq-os-system", rq_call("rq-os-system", "os.system", arg=f"touch {proof} # {marker('rq-os-system')}"))
    _send(stack, "rq-callback", {**rq_call("rq-callback"), "fields": {"failure_callback_name": "os.system"}})

    assert "not a kit job: function 'os.system'" in _dead_reason(stack, "rq-os-system")
    assert "failure callback 'os.system': refused" in _dead_reason(stack, "rq-callback")
    stack.drain("signup", timeout=30)
    assert not proof.exists() and ledger.attempts(service="signup") == []  # refused before any handler ran
    assert stack.pool.alive(0)


def test_a_sigkilled_workers_job_waits_in_the_started_registry_for_its_timeout(stack, ledger):
    """RQ has no ack and no connection to drop: the job of a SIGKILLed worker stays "started" until its
    registry entry expires (job timeout + the kit's grace), then a live worker's maintenance retries it."""
    stack.start(["signup"], StackOptions(workers=2, max_retries=1))
    [slow] = signups(1, 62, fault="slow", seconds=2.0)
    stack.publish("signup", [slow])
    stack.kill_worker_holding("signup", slow.key)
    killed_at = time.time()
    client = stack.client
    assert client.zcard("rq:wip:signup") == 1  # still "started": nothing noticed the death
    wait_for(lambda: len(ledger.attempts_for("signup", slow.key)) == 2, timeout=jobs.JOB_TIMEOUT_S + 30,
             what="the abandoned job run again")
    first, second = ledger.attempts_for("signup", slow.key)
    assert second.started_at - first.started_at >= jobs.JOB_TIMEOUT_S + LEASE_GRACE_S - 1
    assert time.time() - killed_at >= jobs.JOB_TIMEOUT_S  # not before the job timeout
    stack.drain("signup", timeout=30)
    assert [a.outcome for a in ledger.attempts_for("signup", slow.key)] == [None, "ok"]


def test_an_external_redis_needs_a_database_named_for_rq(kit, monkeypatch):
    monkeypatch.delenv(topology.DB_ENV, raising=False)
    external = dataclasses.replace(kit, external_redis_url="redis://someone:secret@127.0.0.1:1/0")
    with pytest.raises(KitError, match=topology.DB_ENV) as err:
        topology.database(external)
    assert "secret" not in str(err.value)
    monkeypatch.setenv(topology.DB_ENV, "7")
    assert topology.database(external) == 7
    # redis-py's from_url lets the URL's /0 win over db=7: core/redis_client.connect puts the db in the URL
    assert topology.connection(external).connection_pool.connection_kwargs["db"] == 7
    assert topology.database(kit) == 7  # the setting wins on the kit's own Redis too
    monkeypatch.delenv(topology.DB_ENV)
    assert topology.database(kit) == topology.KIT_DB


def test_a_delayed_job_waits_in_the_scheduled_registry_until_due(stack, ledger):
    """``publish_delayed`` = ``Queue.enqueue_in``: the job waits in Redis (``rq:scheduled:<q>``), and the stack's
    scheduler process moves it to its queue when due."""
    stack.start(["signup"], StackOptions(workers=1))
    [later] = signups(1, 63)
    sent_at = time.time()
    assert stack.publish_delayed("signup", [later], delay_s=3.0).confirmed == 1
    assert stack.client.zcard("rq:scheduled:signup") == 1 and stack.backlog("signup") == 1
    [attempt] = wait_for(lambda: ledger.attempts_for("signup", later.key), timeout=30, what="the delayed job run")
    # RQ stores the due time in whole seconds (the scheduled registry's score), rounded down: up to 1 s early
    # (measured 2.94 s for 3.0), then the scheduler's 1 s tick
    assert 2.0 <= attempt.started_at - sent_at < 3.0 + 1.0 + 2.0
    stack.drain("signup", timeout=30)
    assert [e.key for e in ledger.effects(service="signup")] == [later.key]
