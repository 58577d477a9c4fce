"""Durability: restart the broker mid-stream; no confirmed message may be lost."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.waiting import wait_for, wait_while_progressing
from queuekit.suite.model import Anything, AtMost, Context, Scenario, always, by_capability, for_stack
from workloads import WORKLOADS

from .observe import delivery

N = 40
SLOW_S = 0.05


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m, {"fault": "slow", "seconds": SLOW_S})
                 for m in WORKLOADS["signup"].make_messages(N, seed=111)]
    first, second = envelopes[: N // 2], envelopes[N // 2:]
    confirmed = ctx.stack.publish("signup", first).confirmed
    wait_for(lambda: len(ctx.ledger.effects(service="signup")) >= 3, timeout=60, what="work under way")
    ctx.stack.restart_broker()  # SIGTERM: RabbitMQ / Kafka shut down as in a rolling restart, then start
    confirmed += ctx.stack.publish("signup", second).confirmed  # clients reconnect by themselves
    # Every task done, or 45 s without a new one: a confirmed task that never runs is the finding
    # ("lost" below), not an error (stock kombu's Kafka transport lost one now and then: docs/findings.md).
    wait_while_progressing(lambda: len({e.key for e in ctx.ledger.effects(service="signup")}), N,
                           timeout=120, stall=45)
    ctx.stack.drain("signup", timeout=60)
    seen = delivery(ctx, envelopes, "signup")
    return {"confirmed": confirmed, "lost": seen["lost"], "duplicate_effects": seen["duplicates"],
            "redelivered": len(ctx.ledger.attempts(service="signup")) - N}


SCENARIO = Scenario(
    name="broker-restart",
    concept="Durability: durable queues, persistent messages, the replicated log",
    question=f"{N} tasks, the broker restarted after a few: is any confirmed message lost?",
    workload="signup",
    expect=[
        always(confirmed=N, lost=0, duplicate_effects=0, redelivered=Anything()),
        # kombu's Redis transport (capabilities.popped_before_tracked): BRPOP takes a message out of Redis before
        # its QoS writes it into the unacked hash, so the pop a worker has in flight when the broker goes away is
        # gone with the connection (kombu#305 open; celery#4354 the same window at worker shutdown). Seen on
        # celery_redis in a clean-clone CI run on 2026-12-05: lost 1 of 40, the next task in queue order when
        # Redis shut down, received by no worker. At most one pop in flight per worker (prefetch 1, 2 workers).
        by_capability("popped_before_tracked", yes={"lost": AtMost(2)}),
        # Dramatiq on Redis's own finding (dramatiq 2.2.1, worker.py ``_ConsumerThread.run``): on a broker connection
        # error the worker replaces its consumer, and what the old one had fetched but not handed out (its prefetch,
        # its delay queue) is dropped from memory. On RabbitMQ the dropped connection returns those deliveries; on
        # Redis they stay in the LIVE worker's ack set, which Dramatiq's maintenance requeues only once that
        # worker's heartbeat stops: not run while it lives (2026-12-05: 2 of 40, one per worker, still held 30 s
        # later). At most one prefetched and one delayed message per worker (prefetch 1, 2 workers).
        for_stack("dramatiq_redis", "a Redis connection error strands what a live worker's consumer had fetched: "
                  "Dramatiq drops it from memory and only a dead worker's ack set is requeued", lost=AtMost(4)),
    ],
    kinds={"lost": "loss", "duplicate_effects": "duplicate"},
    run=run,
    needs_kit_brokers=True,
)
