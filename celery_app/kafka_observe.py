"""Celery on Kafka (``celery_kafka``), live: its topics and groups in Kafka's own view (AdminClient).

Not ``celery_app.observe``: that one reads the RabbitMQ queues of the ``celery`` column, and before
each stack declared its observer the dashboard found it by package name and showed those numbers on
this card. kombu's confluentkafka transport makes a topic per queue (``celery.<service>``) and a group
per topic (``<topic>-consumer-group``); our tasks write failures to ``celery.<service>.dlq``.
"""
from __future__ import annotations

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

from queuekit.core.config import Settings
from queuekit.stacks.kafka import Admin
from queuekit.stacks.observe import Observation
from workloads import WORKLOADS

from . import topology


def group_of(topic: str) -> str:
    return f"{topic}-consumer-group"  # kombu's confluentkafka transport: one group per queue, not configurable


def records(admin: Admin, topic: str, metadata) -> int:
    """Records in ``topic`` now: log end minus log start, over its partitions."""
    tps = [TopicPartition(topic, p) for p in metadata.partitions]
    ends = admin.client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=5)
    starts = admin.client.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=5)
    return sum(ends[tp].result().offset - starts[tp].result().offset for tp in tps)


def observe(settings: Settings) -> dict[str, Observation]:
    admin = Admin(settings)
    topics = admin.topics(timeout=5)
    out = {}
    for workload, spec in WORKLOADS.items():
        queues = [topology.queue_name(s) for s in spec.services]
        if not all(q in topics for q in queues):
            continue  # not declared (never started, or reset)
        lag = admin.lag([(group_of(q), q) for q in queues])
        entry = [topology.queue_name(s) for s in topology.entry_services(workload)]
        dlqs = [topology.dlq_name(s) for s in spec.services if topology.dlq_name(s) in topics]
        members = admin.client.describe_consumer_groups([group_of(q) for q in entry])
        out[workload] = Observation(
            backlog=sum(lag.values()),  # records not committed yet: kombu commits when a task is acked
            dead_letters=sum(records(admin, t, topics[t]) for t in dlqs),
            published=sum(records(admin, q, topics[q]) for q in entry),
            in_flight=None,  # pull-based: the broker does not track deliveries per consumer
            consumers=min(len(f.result().members) for f in members.values()),
        )
    return out


def links(settings: Settings) -> dict[str, str]:
    return {}  # the kit's Flower watches the RabbitMQ Celery workers, not these
