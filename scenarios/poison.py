"""DLQ: a message that always fails ends in the dead-letter place and blocks nothing."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Anything, Context, Scenario, always, by_capability
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
    # the poison's attempts are the retries this scenario asks for (info), not work started again by accident
    kinds={"poison_attempts": "info"},
    run=run,
)


# -- a message that kills its worker: no exception to retry, only a broker that keeps redelivering it --------
KILLS = 3  # the harness kills the worker holding the message this many times at most
DELIVERY_LIMIT = 1  # quorum's x-delivery-limit here: returned more than once -> dead-lettered by RabbitMQ
SLOW_S = 5.0  # the message's handler runs this long, so the kill lands inside it


def crash_loop(ctx: Context, most: int = KILLS) -> dict:
    """Kill the worker holding the message ``most`` times at most (a new worker each time), then observe."""
    [msg] = WORKLOADS["signup"].make_messages(1, seed=52)
    poison = make_envelope(msg, {"fault": "slow", "seconds": SLOW_S})  # stands in for an OOM / segfault
    ctx.stack.publish("signup", [poison])
    kills = 0
    for attempt in range(1, most + 1):
        def started_or_dead(n: int = attempt) -> bool:
            return len(ctx.ledger.attempts_for("signup", poison.key)) >= n or bool(ctx.stack.dead_letters("signup"))

        wait_for(started_or_dead, timeout=90, what=f"attempt {attempt} at the crashing message, or its dead letter")
        attempts = ctx.ledger.attempts_for("signup", poison.key)
        if len(attempts) < attempt or attempts[attempt - 1].finished_at is not None:
            break  # the broker gave up on it (dead letter), or this delivery already ran to the end
        ctx.stack.kill_worker(ctx.stack.worker_index(attempts[attempt - 1].worker))  # SIGKILL mid-handler
        kills += 1
        ctx.stack.add_worker()  # a supervisor restarts it: the fleet stays at two
    # after KILLS kills the next delivery (if any) runs to the end; or the message sits dead-lettered
    wait_for(lambda: ctx.ledger.effects(service="signup") or ctx.stack.dead_letters("signup"), timeout=90,
             what="the crashing message handled or dead-lettered")
    ctx.stack.drain("signup", timeout=90)
    dead = ctx.stack.dead_letters("signup")
    handled = bool(ctx.ledger.effects(service="signup"))
    n_attempts = len(ctx.ledger.attempts_for("signup", poison.key))
    return {
        "attempts": n_attempts,
        "kills": kills,
        "redelivered_after_each_kill": n_attempts == kills + 1,
        "ended": "dead-letter" if dead else "handled" if handled else "nowhere",
        "dead_letters": len(dead),
        "dead_letter_reason": dead[0].reason[:100] if dead else None,  # no handler raised: the broker's own words
        "lost": int(not dead and not handled),
    }


CRASH_LOOP = Scenario(
    name="poison-crash-loop",
    concept="DLQ: a message that kills its worker (delivery limit)",
    question=f"A message whose handler takes its worker down ({KILLS} SIGKILLs at most, a new worker each time): "
             f"does the broker redeliver it forever, or cap it (quorum x-delivery-limit={DELIVERY_LIMIT}) "
             "and dead-letter it?",
    workload="signup",
    # delivery_limit: quorum's x-delivery-limit (returns before dead-lettering); share groups derive their
    # delivery count limit from max_retries (max_retries + 1 deliveries, at least 2): both give 2 attempts here
    options=StackOptions(workers=2, delivery_limit=DELIVERY_LIMIT, max_retries=DELIVERY_LIMIT),
    expect=[
        always(lost=0),
        by_capability(
            "delivery_limit",
            # the broker counts each return (x-delivery-count) and dead-letters past the limit, reason delivery_limit
            yes={"attempts": DELIVERY_LIMIT + 1, "ended": "dead-letter", "redelivered_after_each_kill": False,
                 "dead_letter_reason": Anything()},
            # nothing counts: every kill is followed by one more delivery; after the harness stops killing
            # (or a delivery outruns the restart) it completes
            no={"redelivered_after_each_kill": True, "ended": "handled", "dead_letters": 0},
        ),
        # every reader of a stream gets every message (no competing consumers): both workers run it, and the
        # attempts count both readers' deliveries, not one redelivery per kill
        by_capability("competing_consumers", no={"redelivered_after_each_kill": Anything()}),
    ],
    kinds={"lost": "loss"},
    run=crash_loop,
)
