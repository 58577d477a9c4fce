"""The share-group stack, live: each share group's lag as the broker counts it, its dlq.* topics, its members.

A share group has no committed offset to subtract from the log end: the broker reports per partition how
many records are not yet acknowledged or archived (``ShareAdmin.lag``), which is the backlog. Dead letters
are the records the broker wrote to each group's ``dlq.qks.<service>`` topic (KIP-1191).
"""
from __future__ import annotations

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from workloads import WORKLOADS

from . import topology
from .admin import REQUEST_TIMEOUT, ShareAdmin


def records(admin: ShareAdmin, topic: str, metadata: dict) -> int:
    """Records in ``topic`` now: log end minus log start, over its partitions (0 when it does not exist)."""
    if topic not in metadata:
        return 0
    tps = [TopicPartition(topic, p) for p in metadata[topic].partitions]
    ends = admin.client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=REQUEST_TIMEOUT)
    starts = admin.client.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=REQUEST_TIMEOUT)
    return sum(ends[tp].result().offset - starts[tp].result().offset for tp in tps)


def observe(settings: Settings) -> dict[str, Observation]:
    admin = ShareAdmin(settings)
    metadata = admin.topics(timeout=5)
    out = {}
    for workload in WORKLOADS:
        routes = topology.routes(workload)
        if not all(r.source in metadata for r in routes):
            continue  # not declared (never started, or reset)
        entry = [r for r in routes if r.source == topology.entry_topic(workload)]
        out[workload] = Observation(
            backlog=sum(admin.lag(topology.subscriptions(workload)).values()),  # not acknowledged nor archived
            dead_letters=sum(records(admin, r.dlq_topic, metadata) for r in routes),
            published=records(admin, topology.entry_topic(workload), metadata),
            in_flight=None,  # pull-based: the broker does not report what each member acquired
            consumers=min(len(admin.members(r.group)) for r in entry),
        )
    return out


def links(settings: Settings) -> dict[str, str]:
    return {}
