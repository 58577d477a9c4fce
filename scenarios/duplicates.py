"""Idempotency: the same message delivered twice; one effect with the guard, two without."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Context, Scenario, always, by_capability
from workloads import WORKLOADS

N = 10
WORKERS = 2


def run(ctx: Context) -> dict:
    guarded, unguarded = (WORKLOADS["signup"].make_messages(2 * N, seed=61)[i::2] for i in (0, 1))
    with_guard = [make_envelope(m) for m in guarded]
    without_guard = [make_envelope(m, {"idempotency": "off"}) for m in unguarded]
    for batch in (with_guard, without_guard):
        ctx.stack.publish("signup", batch)
        ctx.stack.publish("signup", batch)  # the same envelopes again: a duplicate delivery of each
    wait_for(lambda: ctx.ledger.count("attempts", service="signup") >= 4 * N, timeout=60,
             what=f"{4 * N} deliveries handled")
    ctx.stack.drain("signup")
    effects = ctx.ledger.effects(service="signup")
    keys_on = {e.key for e in with_guard}
    return {
        "deliveries": ctx.ledger.count("attempts", service="signup"),
        "effects_with_guard": sum(1 for e in effects if e.key in keys_on),
        "effects_without_guard": sum(1 for e in effects if e.key not in keys_on),
        "emails_with_guard": sum(1 for row in ctx.ledger.outbox_rows("signup") if row["key"] in keys_on),
    }


SCENARIO = Scenario(
    name="duplicate-delivery",
    concept="Idempotency",
    question=f"{N} messages each delivered twice: how many effects with the ledger's idempotency key, "
             "and how many without it?",
    workload="signup",
    options=StackOptions(workers=WORKERS),
    expect=[always(deliveries=4 * N, effects_with_guard=N, emails_with_guard=N, effects_without_guard=2 * N),
            # every worker reads every message (a 3.10 stream): each delivery happens once per worker
            by_capability("competing_consumers", no={"deliveries": 4 * N * WORKERS,
                                                     "effects_without_guard": 2 * N * WORKERS})],
    run=run,
)
