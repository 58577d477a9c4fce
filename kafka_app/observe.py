"""The Kafka stack, live: log-end offsets, committed offsets and members of its groups (AdminClient)."""
from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from workloads import WORKLOADS

from . import clients, topology

TIMEOUT = 5.0


def observe(settings: Settings) -> dict[str, Observation]:
    admin = clients.admin(settings)
    metadata = admin.list_topics(timeout=TIMEOUT).topics
    tps = {t: [TopicPartition(t, p) for p in metadata[t].partitions] for t in metadata if t.startswith(topology.PREFIX)}
    every = [tp for parts in tps.values() for tp in parts]
    if not every:
        return {}
    ends = {tp: f.result().offset for tp, f in admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in every}, request_timeout=TIMEOUT).items()}
    starts = {tp: f.result().offset for tp, f in admin.list_offsets(
        {tp: OffsetSpec.earliest() for tp in every}, request_timeout=TIMEOUT).items()}

    def committed(group: str, topic: str) -> int:
        """Records of ``topic`` the group has committed past (no commit yet: the log start)."""
        request = [ConsumerGroupTopicPartitions(group, tps[topic])]
        done = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group].result()
        return sum(tp.offset if tp.offset >= 0 else starts[TopicPartition(tp.topic, tp.partition)]
                   for tp in done.topic_partitions)

    def size(topic: str) -> int:
        return sum(ends[tp] for tp in tps.get(topic, []))

    groups = [r.group for w in WORKLOADS for r in topology.routes(w)]
    described = {g: f.result() for g, f in admin.describe_consumer_groups(groups, request_timeout=TIMEOUT).items()}
    out = {}
    for workload in WORKLOADS:
        routes = topology.routes(workload)
        if not all(r.source in tps for r in routes):
            continue  # not declared (never started, or reset)
        lag = sum(size(topic) - committed(group, topic)
                  for group, topic in topology.subscriptions(workload) if topic in tps)
        entry = [r for r in routes if r.source == topology.entry_topic(workload)]
        out[workload] = Observation(
            backlog=lag,
            dead_letters=sum(ends[tp] - starts[tp] for r in routes for tp in tps.get(r.dlq_topic, [])),
            published=size(topology.entry_topic(workload)),
            consumed=min(committed(r.group, r.source) for r in entry),
            in_flight=None,  # pull-based: a member holds the record it is handling, nothing is "delivered"
            consumers=min(len(described[r.group].members) for r in entry),
        )
    return out


def links(settings: Settings) -> dict[str, str]:
    return {}
