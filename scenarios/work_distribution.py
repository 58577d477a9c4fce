"""Queue (P2P): each message goes to exactly one worker, and the load is spread."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.suite.model import Anything, Context, Scenario, always, by_capability, for_stack
from workloads import WORKLOADS

from .observe import DELIVERY_KINDS, delivery, wait_for_effects

N = 60


FINDING = ("RabbitMQ picks a super stream partition's active member by that partition's subscription order "
           "(index mod members): members that subscribed in different orders can hold two partitions while another "
           "holds none (observed on 4.3: 3 partitions on 2 of 3 members, stable for 60 s)")


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m) for m in WORKLOADS["signup"].make_messages(N, seed=11)]
    ctx.stack.publish("signup", envelopes)
    wait_for_effects(ctx, "signup", [e.key for e in envelopes])
    ctx.stack.drain("signup")
    per_worker: dict[str, int] = {}
    for effect in ctx.ledger.effects(service="signup"):
        per_worker[effect.worker] = per_worker.get(effect.worker, 0) + 1
    workers_per_key: dict[str, set[str]] = {}
    for attempt in ctx.ledger.attempts(service="signup"):
        workers_per_key.setdefault(attempt.key, set()).add(attempt.worker)
    return {
        **delivery(ctx, envelopes, "signup"),
        "keys_seen_by_several_workers": sum(1 for ws in workers_per_key.values() if len(ws) > 1),
        "idle_workers": ctx.options.workers - len(per_worker),
        "per_worker": per_worker,
    }


SCENARIO = Scenario(
    name="work-distribution",
    concept="Queue (P2P) / consumer group: work distribution",
    question=f"{N} signup tasks, 3 workers: does each task go to exactly one worker, and does every worker get some?",
    workload="signup",
    options=StackOptions(workers=3, partitions=6),  # Kafka: parallelism <= partitions
    expect=[always(lost=0, duplicates=0, keys_seen_by_several_workers=0, idle_workers=0),
            # RabbitMQ >= 3.11 (super streams, single active consumer): the broker places the partitions, evenly
            # only when every member subscribed to them in the same order; idle members are recorded, not failed.
            for_stack("rabbitmq_stream", FINDING, idle_workers=Anything()),
            # No competing consumers (a 3.10 stream): every worker reads every task, so every key is seen by all
            # of them; the effect goes to whichever applies it first, so how many end without one is a race.
            by_capability("competing_consumers", no={"keys_seen_by_several_workers": N, "idle_workers": Anything()})],
    kinds=DELIVERY_KINDS,
    run=run,
)
