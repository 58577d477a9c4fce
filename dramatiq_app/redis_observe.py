"""The dramatiq_redis stack, live: its queues' hashes, ack sets, heartbeats and dead-letter sets in Redis.

Redis keeps no per-queue counters (nothing like RabbitMQ's publish/ack stats), so the card has no
rates: backlog, in flight, dead letters and live workers only.
"""
from __future__ import annotations

from queuekit.core.config import Settings
from queuekit.core.redis_client import connect, redacted
from queuekit.stacks.observe import Observation
from workloads import WORKLOADS

from . import topology
from .redis_broker import HEARTBEAT_TIMEOUT_MS, PRODUCER, namespace
from .redis_view import RedisView


def observe(settings: Settings) -> dict[str, Observation]:
    client = connect(settings)
    try:
        view = RedisView(client, namespace(settings))
        held = view.ack_sets()
        workers = len(view.live_workers(HEARTBEAT_TIMEOUT_MS) - {PRODUCER})
        out = {}
        for workload in WORKLOADS:
            work = topology.work_queues(workload)
            services = WORKLOADS[workload].services
            dead = [reason for s in services for _, reason in view.dead(topology.queue_name(s))[-3:]]
            out[workload] = Observation(
                backlog=view.unsettled(work),
                dead_letters=view.dead_count([topology.queue_name(s) for s in services]),
                in_flight=sum(n for _, queue, n in held if queue in work),
                consumers=workers,  # every worker consumes every queue of its workloads
                reasons=[r.strip().splitlines()[-1] for r in dead if r.strip()],
            )
        return out
    finally:
        client.close()


def links(settings: Settings) -> dict[str, str]:
    return {"Redis": redacted(settings.redis_url)}
