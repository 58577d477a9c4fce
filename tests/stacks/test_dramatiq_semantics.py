"""Dramatiq-specific delivery semantics on the real RabbitMQ: dead letters, retries, prefetch, SIGKILL, full queues."""
from __future__ import annotations

from dataclasses import replace

import pika
import pytest

from dramatiq_app import topology
from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

# well-formed except one type, so the reason is about that field (not a missing one)
BAD_TYPE = (b'{"id": "bad-2", "schema": "signup.requested", "version": 1, "sent_at": 0, "headers": {},'
            b' "body": {"user_id": "7", "email": "a@example.com", "idempotency_key": "k-bad"}}')
NOT_UTF8 = b"\xff\xfe not even UTF-8"


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("dramatiq")


def signups(count: int, seed: int = 1, **headers):
    """Sign-ups whose keys are unique across calls (make_messages' keys repeat between seeds)."""
    messages = WORKLOADS["signup"].make_messages(count, seed=seed)
    return [make_envelope(replace(m, idempotency_key=f"{m.idempotency_key}-{seed}"), headers) for m in messages]


def test_dead_letters_keep_the_bytes_and_say_why(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1, max_retries=2, backoff_ms=20))
    [poison] = signups(1, seed=11, fault="always-fail")
    [flaky] = signups(1, seed=12, fault="fail-times", n=9)  # more failures than retries
    stack.publish_raw("signup", BAD_TYPE)
    stack.publish_raw("signup", NOT_UTF8)  # a valid Dramatiq message whose argument is not UTF-8
    stack.publish("signup", [poison, flaky])
    # a frame that is not a Dramatiq message at all, straight onto the queue
    with pika.BlockingConnection(pika.URLParameters(kit.pika_url)) as conn:
        conn.channel().basic_publish("", topology.queue_name("signup"), b"plain text, no Dramatiq envelope")

    wait_for(lambda: len(stack.dead_letters("signup")) >= 5, timeout=30, what="5 dead letters",
             describe=lambda: str(stack.dead_letters("signup")))
    stack.drain("signup", timeout=30)
    dead = {d.payload: d.reason for d in stack.dead_letters("signup")}
    assert len(dead) == 5
    assert "field 'user_id' must be int" in dead[BAD_TYPE]
    assert "not UTF-8" in dead[NOT_UTF8]
    assert "PermanentError" in dead[_encoded(poison, dead)]
    assert "TransientError: injected failure 3/9" in dead[_encoded(flaky, dead)]  # the LAST attempt's error
    assert dead[b"plain text, no Dramatiq envelope"].startswith("not a Dramatiq message")
    # throws: never retried; Retries: 1 + max_retries attempts
    assert len(ledger.attempts_for("signup", poison.key)) == 1
    assert len(ledger.attempts_for("signup", flaky.key)) == 3
    assert ledger.effects(service="signup") == []


def _encoded(env, dead) -> bytes:
    [payload] = [p for p in dead if env.id.encode() in p]
    return payload


def test_transient_failures_are_retried_with_growing_backoff(stack, ledger):
    stack.start(["signup"], StackOptions(workers=1, max_retries=3, backoff_ms=100))
    [env] = signups(1, seed=21, fault="fail-times", n=2)
    stack.publish("signup", [env])
    wait_for(lambda: ledger.effects(service="signup"), timeout=30, what="the effect after 2 failures")
    stack.drain("signup", timeout=30)
    starts = [a.started_at for a in ledger.attempts_for("signup", env.key)]
    assert len(starts) == 3 and len(ledger.effects(service="signup")) == 1
    first, second = starts[1] - starts[0], starts[2] - starts[1]
    assert 0.09 <= first < 0.5 and second >= 0.19  # 100 ms * 2**n * U[1,2), via the .DQ
    assert stack.dead_letters("signup") == []


def test_prefetch_bounds_what_a_worker_holds(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1, concurrency=1, prefetch=3))
    stack.publish("signup", signups(6, seed=31, fault="slow", seconds=1.0))
    # the management API's counters lag by seconds: read the queue's ready count over AMQP instead
    with pika.BlockingConnection(pika.URLParameters(kit.pika_url)) as conn:
        channel = conn.channel()
        ready = lambda: channel.queue_declare(topology.queue_name("signup"), passive=True).method.message_count
        wait_for(lambda: ready() == 3, timeout=10, what="6 - 3 prefetched = 3 ready", describe=lambda: str(ready()))
    prefetch = lambda: {c["prefetch_count"] for c in stack.mgmt.channel_prefetch_unacked() if c.get("consumer_count")}
    # the queue consumer's basic_qos; its .DQ consumer has Dramatiq's 1000 x threads
    wait_for(lambda: {3, 1000} <= prefetch(), timeout=10, what="consumer channels with prefetch 3 and 1000",
             describe=lambda: str(prefetch()))
    wait_for(lambda: len(ledger.effects(service="signup")) == 6, timeout=30, what="6 effects")
    assert ledger.in_flight_max(service="signup") == 1  # one worker thread; the other 2 wait in memory
    stack.drain("signup", timeout=30)


def test_sigkill_mid_task_redelivers(stack, ledger):
    stack.start(["signup"], StackOptions(workers=2, prefetch=1))
    [slow] = signups(1, seed=41, fault="slow", seconds=2.0)
    stack.publish("signup", [slow])
    holder = wait_for(lambda: ledger.attempts_for("signup", slow.key), timeout=20, what="the slow attempt")[0]
    pid = stack.kill_worker(int(holder.worker.rsplit("-", 1)[1]))
    assert pid == holder.pid  # the killed process is the one that held the message
    wait_for(lambda: ledger.effects(service="signup"), timeout=30, what="the redelivered message's effect")
    stack.drain("signup", timeout=30)
    attempts = ledger.attempts_for("signup", slow.key)
    assert [a.outcome for a in attempts] == [None, "ok"] and attempts[1].worker != holder.worker


def test_full_entry_queue_refuses_publishes(stack, ledger):
    stack.start(["signup"], StackOptions(workers=1, prefetch=1, queue_max_length=3))
    stack.publish("signup", signups(1, seed=51, fault="slow", seconds=3.0))
    wait_for(lambda: ledger.attempts(service="signup"), timeout=20, what="the worker busy on the slow one")
    report = stack.publish("signup", signups(6, seed=52))
    assert (report.confirmed, report.refused) == (3, 3)
    wait_for(lambda: len(ledger.effects(service="signup")) == 4, timeout=30, what="1 slow + 3 accepted effects")
    stack.drain("signup", timeout=30)
