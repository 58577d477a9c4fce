"""Replay: can a new consumer read history that was already processed?"""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.suite.model import Context, Scenario, always, by_capability
from workloads import WORKLOADS

from .observe import wait_for_effects

N = 20


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m) for m in WORKLOADS["signup"].make_messages(N, seed=91)]
    ctx.stack.publish("signup", envelopes)
    wait_for_effects(ctx, "signup", [e.key for e in envelopes])
    ctx.stack.drain("signup")
    return {"consumed": len(ctx.ledger.effects(service="signup")), "replayed": ctx.stack.replay("signup")}


SCENARIO = Scenario(
    name="replay",
    concept="Stream history and replay",
    question=f"After {N} messages were consumed and acknowledged, how many can a brand-new consumer read again?",
    workload="signup",
    # a log keeps what was read (a new group from the earliest offset reads it); a queue deletes what was acked
    expect=[always(consumed=N), by_capability("replayable", yes={"replayed": N}, no={"replayed": 0})],
    run=run,
)
