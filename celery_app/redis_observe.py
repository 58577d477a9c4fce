"""Celery on Redis (``celery_redis``), live: its lists and kombu's unacked hash, read with redis-py.

Not ``celery_app.observe`` (the RabbitMQ queues of the ``celery`` column). Redis keeps no counters
of what went through a list and no list of consumers: published, consumed and consumers are not
shown; backlog = the lists + the unacked entries of the workload's queues, in flight = the latter.
"""
from __future__ import annotations

from kombu.utils.json import loads

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from queuekit.stacks.redis import RedisParts
from workloads import WORKLOADS

from . import redis, topology

PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's priority lists beside each queue's own


def observe(settings: Settings) -> dict[str, Observation]:
    parts = RedisParts(settings, namespace=redis.NAMESPACE)
    try:
        client = parts.client
        unacked = [loads(e)[2] for e in client.hvals(parts.key("unacked"))]  # [message, exchange, routing key]
        out = {}
        for workload, spec in WORKLOADS.items():
            queues = [topology.queue_name(s) for s in spec.services]
            pipe = client.pipeline(transaction=False)
            for q in queues:
                for p in PRIORITY_STEPS:
                    pipe.llen(parts.key(q) + (f"\x06\x16{p}" if p else ""))
            for s in spec.services:
                pipe.llen(parts.key(topology.dlq_name(s)))
            counts = pipe.execute()
            ready, dead = sum(counts[:-len(spec.services)]), sum(counts[-len(spec.services):])
            held = sum(rk in queues for rk in unacked)
            out[workload] = Observation(backlog=ready + held, dead_letters=dead, in_flight=held)
        return out
    finally:
        parts.close()


def links(settings: Settings) -> dict[str, str]:
    return {"Flower": settings.flower_redis_url}  # the kit's second Flower, watching the Redis workers
