"""Celery on Kafka's names and records: the topics and groups kombu's confluentkafka transport makes for
celery_app's queues, and how a dead letter is read back out of a kombu record.

    queue celery.<service>      topic celery.<service>,  group celery.<service>-consumer-group
    queue celery.<service>.dlq  topic celery.<service>.dlq (never consumed; read by READER_GROUP, assign() only)
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from queuekit.core.config import Settings
from queuekit.stacks import manifest
from queuekit.stacks.kafka import read_until
from queuekit.stacks.manifest import KitObject
from workloads import WORKLOADS

from . import topology
from .dead_letters import virtual_message
from .kafka_observe import group_of

REPLAY_GROUPS = f"{topology.PREFIX}replay."  # replay()'s throwaway groups: celery.replay.<hex>
READER_GROUP = f"{topology.PREFIX}reader"  # the dead-letter reader (assign() only: never joins, never commits)


def topics(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    return [name for s in topology.services(workloads) for name in (topology.queue_name(s), topology.dlq_name(s))]


def kit_groups(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    """Every group the kit's consumers of ``workloads`` use, and the dead-letter reader's (every workload's);
    replay groups aside: ``REPLAY_GROUPS``."""
    return [group_of(topology.queue_name(s)) for s in topology.services(workloads)] + [READER_GROUP]


def read(settings: Settings, topic: str, partitions: list[int]) -> list[Message]:
    """Every record of ``topic`` now, from the beginning, without committing anything."""
    reader = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": READER_GROUP,
                       "enable.auto.commit": False})  # assign() only: never joins, never commits
    try:
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        return read_until(reader, topic, partitions, timeout=30)
    finally:
        reader.close()


def replay(settings: Settings, topic: str, partitions: list[int], timeout: float) -> int:
    """How many records a brand-new group reads from ``topic`` (earliest offset, nothing committed)."""
    group = f"{REPLAY_GROUPS}{uuid.uuid4().hex[:8]}"
    manifest.record(settings, [KitObject("kafka", "group", group)])  # a shared broker: purge deletes it by name
    reader = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "enable.auto.commit": False,
                       "group.id": group, "auto.offset.reset": "earliest"})
    try:
        reader.subscribe([topic])  # a real group member, as a new Celery deployment would be
        return len(read_until(reader, topic, partitions, timeout))
    finally:
        reader.close()


def kombu_record(value: bytes | None) -> tuple[bytes, dict]:
    """A kombu virtual-transport record (``dead_letters.virtual_message``); a record without a value, which
    kombu never writes, reads as an empty body."""
    return virtual_message(value or b"{}")
