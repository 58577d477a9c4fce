"""Consumer group membership: a consumer joins and another leaves mid-stream."""
from __future__ import annotations

import functools

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Anything, Context, Scenario, always, by_capability
from workloads import WORKLOADS

from .observe import delivery

N = 120
SLOW_S = 0.02
BATCH = 6  # the second half goes out this many at a time
LEAVE_AT = N // 2 + N // 8  # effects before the first member leaves


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m, {"fault": "slow", "seconds": SLOW_S})
                 for m in WORKLOADS["signup"].make_messages(N, seed=101)]
    done = lambda: len(ctx.ledger.effects(service="signup"))  # noqa: E731
    first, second = envelopes[: N // 2], envelopes[N // 2:]
    ctx.stack.publish("signup", first)
    wait_for(lambda: done() >= N // 4, timeout=60, what=f"{N // 4} effects before the join")
    joined_name = ctx.stack.worker_name(ctx.stack.add_worker())  # joins: Kafka rebalances, queues just compete
    # The second half goes out a batch at a time, the next once all but the last batch are applied: a member
    # that fetches ahead (a share-group member acquires what its fetch returns; librdkafka's max.poll.records
    # is best-effort) cannot take the whole half before the joiner's first fetch, however long its
    # assignment took. The first member leaves cleanly (SIGTERM) at five eighths, with work in flight.
    left = False
    for i in range(0, len(second), BATCH):
        ctx.stack.publish("signup", second[i:i + BATCH])
        sent = N // 2 + i + BATCH
        if not left and sent >= LEAVE_AT:
            wait_for(lambda: done() >= LEAVE_AT, timeout=60, what=f"{LEAVE_AT} effects before the leave")
            ctx.stack.stop_worker(0)
            left = True
        else:
            wait_for(functools.partial(lambda s: done() >= s - BATCH, sent), timeout=60, what=f"{sent - BATCH} effects")
    wait_for(lambda: done() >= N, timeout=90, what=f"all {N} effects after join and leave")
    ctx.stack.drain("signup")
    seen = delivery(ctx, envelopes, "signup")
    attempts = ctx.ledger.attempts(service="signup")
    return {
        "lost": seen["lost"],
        "duplicate_effects": seen["duplicates"],
        "redeliveries": len(attempts) - len({a.key for a in attempts}),  # handled more than once
        "joined_worker_did_work": any(e.worker == joined_name for e in ctx.ledger.effects(service="signup")),
    }


SCENARIO = Scenario(
    name="rebalance",
    concept="Consumer group: members join and leave",
    question=f"{N} tasks; a third worker joins after a quarter (the second half follows in batches of {BATCH}), "
             "the first leaves after five eighths: anything lost, anything handled twice?",
    workload="signup",
    options=StackOptions(workers=2, partitions=6),
    # redeliveries are recorded, not asserted: on Kafka, uncommitted offsets of moved partitions repeat
    expect=[always(lost=0, duplicate_effects=0, joined_worker_did_work=True, redeliveries=Anything()),
            # Without competing consumers (a 3.10 stream) the joiner is a new reader: no stored offset, so it starts
            # at the first message, behind the others, and finds every message already applied (no effect of its own).
            by_capability("competing_consumers", no={"joined_worker_did_work": False})],
    kinds={"lost": "loss", "duplicate_effects": "duplicate"},
    run=run,
)
