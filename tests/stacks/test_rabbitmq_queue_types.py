"""Classic and quorum queues under the same names: a switch of type in either direction starts clean.

RabbitMQ fixes a queue's type when it is declared; declaring ``celery.signup``
as quorum over a classic one is refused (406 PRECONDITION_FAILED, inequivalent
arg 'x-queue-type'; for Celery's topic exchange first, arg 'type'). The stacks' ``reset`` deletes their queues, so a user
switching types never sees that error. The last test shows the error the reset
prevents, so the first ones can fail.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
from amqp.exceptions import PreconditionFailed

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.rabbitmq import Management
from queuekit.stacks.registry import load_stack
from workloads import WORKLOADS

PAIRS = [("celery", "celery_quorum", "celery.signup"), ("dramatiq", "dramatiq_quorum", "dramatiq.signup")]


def declared(kit, queue: str) -> dict:
    mgmt = Management(kit)
    r = mgmt.http.get(f"/queues/{mgmt.vhost}/{quote(queue, safe='')}")
    r.raise_for_status()
    return r.json()


def run_three(stack, ledger, seed: int) -> None:
    stack.start(["signup"], StackOptions(workers=1))
    envs = [make_envelope(m) for m in WORKLOADS["signup"].make_messages(3, seed=seed)]
    assert stack.publish("signup", envs).confirmed == 3
    wait_for(lambda: {e.key for e in envs} <= {e.key for e in ledger.effects(service="signup")}, timeout=60,
             what=f"3 signups through {stack.name}")
    stack.stop()


@pytest.mark.parametrize("classic,quorum,queue", PAIRS, ids=[p[0] for p in PAIRS])
def test_classic_to_quorum_and_back(fresh_stack, ledger, kit, classic, quorum, queue):
    run_three(fresh_stack(classic), ledger, seed=1)
    assert declared(kit, queue)["type"] == "classic"
    run_three(fresh_stack(quorum), ledger, seed=2)  # fresh_stack resets: the classic queues are deleted first
    q = declared(kit, queue)
    assert q["type"] == "quorum"
    assert q["arguments"]["x-delivery-limit"] == StackOptions().delivery_limit  # RabbitMQ 3.10: no default
    assert q["arguments"]["x-dead-letter-strategy"] == "at-least-once"
    assert declared(kit, f"{queue}.dlq" if classic == "celery" else f"{queue}.XQ")["type"] == "quorum"
    run_three(fresh_stack(classic), ledger, seed=3)
    assert declared(kit, queue)["type"] == "classic"


def test_without_the_reset_rabbitmq_refuses_the_switch(fresh_stack, ledger, kit):
    run_three(fresh_stack("celery"), ledger, seed=4)
    stale = load_stack("celery_quorum")(kit, ledger.path)  # no reset: the classic queues are still there
    with pytest.raises(PreconditionFailed, match="PRECONDITION_FAILED - inequivalent arg"):  # the exchange first
        stale.start(["signup"], StackOptions(workers=1))
    stale.stop()
