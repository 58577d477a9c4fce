"""DLQ: a message that always fails ends in the dead-letter place and blocks nothing."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Context, Scenario, always
from workloads import WORKLOADS

from .observe import key_of, wait_for_effects

N_GOOD = 20
MAX_RETRIES = 2


def run(ctx: Context) -> dict:
    poison_msg, *good_msgs = WORKLOADS["signup"].make_messages(N_GOOD + 1, seed=51)
    poison = make_envelope(poison_msg, {"fault": "fail-times", "n": 1000})  # fails on every attempt
    good = [make_envelope(m) for m in good_msgs]
    ctx.stack.publish("signup", [poison, *good])  # the poison goes first, at the head of the line
    wait_for_effects(ctx, "signup", [e.key for e in good])
    wait_for(lambda: ctx.stack.dead_letters("signup"), timeout=60, what="the poison message in the DLQ")
    ctx.stack.drain("signup")
    dead = ctx.stack.dead_letters("signup")
    return {
        "good_effects": len(ctx.ledger.effects(service="signup")),
        "dead_letters": len(dead),
        "dead_is_the_poison": [key_of(d.payload) for d in dead] == [poison.key],
        "reason_given": all("injected failure" in d.reason for d in dead),
        "poison_attempts": len(ctx.ledger.attempts_for("signup", poison.key)),
    }


SCENARIO = Scenario(
    name="poison-to-dlq",
    concept="DLQ (dead-letter queue)",
    question=f"One always-failing message ahead of {N_GOOD} good ones, {MAX_RETRIES} retries: where does it end, "
             "with what reason, after how many attempts, and do the good ones get through?",
    workload="signup",
    options=StackOptions(workers=1, max_retries=MAX_RETRIES, backoff_ms=50),
    expect=[always(good_effects=N_GOOD, dead_letters=1, dead_is_the_poison=True, reason_given=True,
                   poison_attempts=MAX_RETRIES + 1)],
    run=run,
)
