"""Parallelism beyond partitions: 6 workers on a topic of 2 partitions — how many do work?"""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_while_progressing
from queuekit.suite.model import Anything, AtLeast, AtMost, Context, Scenario, always, by_capability, for_stack
from workloads import WORKLOADS

from .observe import DELIVERY_KINDS, delivery
from .work_distribution import FINDING as SAC_PLACEMENT

N = 36
WORKERS = 6
PARTITIONS = 2
SLOW_S = 0.1


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m, {"fault": "slow", "seconds": SLOW_S})
                 for m in WORKLOADS["signup"].make_messages(N, seed=141)]
    for env in envelopes:  # a stream arriving, one confirmed message at a time (not one burst)
        ctx.stack.publish("signup", [env])
    # Every task done, or 30 s without a new one: a confirmed task that never runs is the observation ("lost").
    wait_while_progressing(lambda: len({e.key for e in ctx.ledger.effects(service="signup")}), N,
                           timeout=90, stall=30)
    ctx.stack.drain("signup")
    per_worker: dict[str, int] = {}
    for effect in ctx.ledger.effects(service="signup"):
        per_worker[effect.worker] = per_worker.get(effect.worker, 0) + 1
    seen = delivery(ctx, envelopes, "signup")
    return {"workers_with_work": len(per_worker), "lost": seen["lost"], "duplicates": seen["duplicates"],
            "deliveries_per_task": round(ctx.ledger.count("attempts", service="signup") / N, 2),
            "per_worker": per_worker}


SCENARIO = Scenario(
    name="more-consumers-than-partitions",
    concept="Queue vs consumer group: parallelism and partitions",
    question=f"{N} tasks of {SLOW_S:g} s arriving one by one, {WORKERS} workers, {PARTITIONS} partitions: "
             "how many workers do work?",
    workload="signup",
    options=StackOptions(workers=WORKERS, partitions=PARTITIONS),
    expect=[
        always(lost=0, duplicates=0),
        # A consumer group gives a partition to one member: at most 2 busy. Queues hand each message to a free
        # worker; share groups hand out records, a partition to several members: more than 2 busy.
        by_capability("work_sharing_beyond_partitions", yes={"workers_with_work": AtLeast(PARTITIONS + 1)},
                      no={"workers_with_work": PARTITIONS}),
        # Celery on Kafka produces without a key: which partition a task lands on is the producer's partitioner's
        # choice, by its metadata at that moment. A clean-clone CI run (2026-12-05) saw 35 of 36 tasks on one
        # worker, in a run where the producer, kept across the topic's re-creation, had failed a record with
        # "Local: Unknown partition" (docs/findings.md): busy workers are at most the partitions, not exactly.
        for_stack("celery_kafka", "keyless records: the partitioner may put a run of them on one partition",
                  workers_with_work=AtMost(PARTITIONS)),
        # RabbitMQ >= 3.11: the broker may place both partitions on one member (see work-distribution)
        for_stack("rabbitmq_stream", SAC_PLACEMENT, workers_with_work=AtMost(PARTITIONS)),
        # No competing consumers (a 3.10 stream): every worker reads every task; the guard lets the first to apply
        # it have the effect, so who "did work" is a race and each task is handled once per worker.
        by_capability("competing_consumers", no={"workers_with_work": Anything(), "deliveries_per_task": WORKERS}),
    ],
    kinds=DELIVERY_KINDS,
    run=run,
)
