"""Kafka as the share-group harness sees it: group configuration, membership, lag, cleanup, replay.

``ShareAdmin`` is the Kafka stacks' ``Admin`` (topics, declaring, deleting)
with what share groups do differently. Group settings live on the broker, per
group (KIP-932): the AdminClient's ``incremental_alter_configs`` on a GROUP
resource sets them before any member joins (``group_config`` says which).
Membership and lag come from ``wire.py`` (the Python admin cannot describe
share groups yet). Nothing here consumes on behalf of a worker; ``replay``
reads with a brand-new group of its own.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from confluent_kafka import AcknowledgeType, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, OffsetSpec, ResourceType

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.kafka import DELETE_TIMEOUT, REQUEST_TIMEOUT, Admin
from queuekit.stacks.manifest import KitObject, owned, record
from queuekit.stacks.reset import Purged

from . import clients, topology, wire

DLQ_TOPIC_CONFIG = {"errors.deadletterqueue.group.enable": "true"}  # the topic's owner allows group DLQ writes
RECORD_LOCK_MS = 30_000  # the broker's default share.record.lock.duration.ms
SESSION_TIMEOUT_MS = 3_000
HEARTBEAT_MS = 1_000
DELIVERY_LIMITS = (2, 10)  # the broker's group.share.{min,max}.delivery.count.limit


def group_config(route: topology.Route, options: StackOptions) -> dict[str, str]:
    """A service's share group settings, on the broker: members read them when they join."""
    low, high = DELIVERY_LIMITS
    return {
        "share.auto.offset.reset": "earliest",  # a new group starts at the log's start (default: latest)
        # How long a delivered record stays locked to its member; past it the broker takes it back.
        "share.record.lock.duration.ms": str(options.record_lock_ms or RECORD_LOCK_MS),
        # Deliveries before the broker archives a record (dead-letters it): retries + the first attempt.
        "share.delivery.count.limit": str(min(max(options.max_retries + 1, low), high)),
        # A member silent this long is removed; what it held is released.
        "share.session.timeout.ms": str(options.session_timeout_ms or SESSION_TIMEOUT_MS),
        "share.heartbeat.interval.ms": str(HEARTBEAT_MS),
        "errors.deadletterqueue.topic.name": route.dlq_topic,  # KIP-1191: the broker writes it
        "errors.deadletterqueue.copy.record.enable": "true",  # with the original key and value, not headers only
    }


class ShareAdmin(Admin):
    """The Kafka ``Admin`` where share groups differ: their config, membership and lag (``wire.py``), cleanup."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.bootstrap = settings.kafka_bootstrap

    def new_client(self) -> AdminClient:
        return clients.admin(self.settings)  # the share stack's client id and logger

    def configure_group(self, group: str, settings: Mapping[str, str]) -> None:
        """Set the share group's own configuration (before members join: they read it on joining)."""
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in settings.items()]
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
        for future in self.client.incremental_alter_configs([resource]).values():
            future.result()

    def group_config(self, group: str) -> dict[str, str]:
        resource = ConfigResource(ResourceType.GROUP, group)
        return {k: v.value for k, v in self.client.describe_configs([resource])[resource].result().items()}

    # -- the broker's view ---------------------------------------------------------------------
    def groups_ready(self, expected: Mapping[str, tuple[str, int]]) -> bool:
        """group -> (topic, members): each group Stable, with exactly that many members, every member assigned
        a partition and every partition assigned. Members beyond the partition count share partitions, but the
        broker assigns them a moment later (seen: 1 s with one partition and three members): until then a
        member has none and would sit idle, so it is not ready."""
        described = wire.describe_share_groups(self.bootstrap, list(expected))
        metadata = self.topics(timeout=5)
        for group, (topic, members) in expected.items():
            desc = described.get(group)
            if desc is None or desc.state != "Stable" or len(desc.members) != members:
                return False
            assigned = {p for m in desc.members for p in m.assignment.get(topic, [])}
            if assigned != set(metadata[topic].partitions) or not all(m.assignment.get(topic) for m in desc.members):
                return False
        return True

    def describe_groups(self, groups: Sequence[str]) -> str:
        try:
            return "; ".join(f"{g.group_id}: {g.state}, {len(g.members)} members, "
                             f"{[sorted(p for ps in m.assignment.values() for p in ps) for m in g.members]}"
                             for g in wire.describe_share_groups(self.bootstrap, list(groups)).values())
        except Exception as exc:  # noqa: BLE001 - a description for a timeout message
            return f"could not describe share groups: {exc}"

    def members(self, group: str) -> dict[str, list[int]]:
        """client id -> partitions of ``group``'s members, as the broker assigned them."""
        desc = wire.describe_share_groups(self.bootstrap, [group])[group]
        return {m.client_id: sorted(p for ps in m.assignment.values() for p in ps) for m in desc.members}

    def lag(self, subscriptions: Sequence[tuple[str, str]]) -> dict[str, int]:
        """Per share group: records not yet acknowledged or archived, as the broker counts them; a partition the
        group has not read yet (lag -1) counts everything it retains (the group starts at the earliest offset)."""
        metadata = self.topics()
        per_group = {}
        for group, topic in subscriptions:
            if topic not in metadata:
                continue
            parts = list(metadata[topic].partitions)
            found = wire.share_group_offsets(self.bootstrap, group, topic, parts)
            unread = [p for p in parts if p not in found or found[p].lag < 0]
            total = sum(found[p].lag for p in parts if p not in unread)
            if unread:
                tps = [TopicPartition(topic, p) for p in unread]
                ends = self.client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=REQUEST_TIMEOUT)
                starts = self.client.list_offsets({tp: OffsetSpec.earliest() for tp in tps},
                                                  request_timeout=REQUEST_TIMEOUT)
                total += sum(ends[tp].result().offset - starts[tp].result().offset for tp in tps)
            per_group[group] = total
        return per_group

    # -- replay: a brand-new share group reads what the topic retains ----------------------------
    def replay(self, topic: str, options: StackOptions, timeout: float) -> int:
        """How many records a new share group (``share.auto.offset.reset=earliest``) is handed, ACCEPTing each."""
        group = f"{topology.REPLAY_GROUPS}{uuid.uuid4().hex[:8]}"
        record(self.settings, [KitObject("kafka", "group", group)])  # a shared broker: purge deletes it by name
        self.configure_group(group, {"share.auto.offset.reset": "earliest"})
        retained = self.retained(topic)
        consumer = clients.share_consumer(self.settings, group, group, options)
        seen: set[tuple[int, int]] = set()
        try:
            consumer.subscribe([topic])

            def read() -> bool:
                for msg in consumer.poll(0.5):
                    if not msg.error() and (partition := msg.partition()) is not None and (at := msg.offset()) is not None:
                        seen.add((partition, at))
                        consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
                return len(seen) >= retained

            if retained:
                wait_for(read, timeout=timeout, interval=0.0, max_interval=0.0, what=f"{topic} read by a new share group",
                         describe=lambda: f"{len(seen)} of {retained} records")
            return len(seen)
        finally:
            consumer.close()

    # -- cleanup: only what the kit created, by name ---------------------------------------------
    def delete_groups_and_topics(self, topics: Sequence[str], groups: Sequence[str], replay_prefix: str | None,
                                 dead_letter_topics: Sequence[str], purged: Purged) -> None:
        """Delete these share groups and topics BY NAME, and with ``replay_prefix`` the throwaway replay groups
        (on a shared broker only those this install recorded), nothing else; what existed, and the records each
        dead-letter topic held, noted in ``purged``."""
        listed = self.topics()
        purged.dead({t: self._records(t, listed[t]) for t in dead_letter_topics if t in listed})
        purged.deleted("share group", self._groups(groups, replay_prefix))
        wait_for(lambda: self._delete_groups(groups, replay_prefix), timeout=DELETE_TIMEOUT,
                 what="the kit's share groups to be deleted",
                 describe=lambda: f"groups left: {self._groups(groups, replay_prefix)}")
        existing = self.topics()
        doomed = [t for t in topics if t in existing]
        self.delete_topics(doomed)
        purged.deleted("topic", doomed)

    def _groups(self, groups: Sequence[str], replay_prefix: str | None) -> list[str]:
        listed = wire.list_share_groups(self.bootstrap)
        replays = owned(self.settings, [KitObject("kafka", "group", g) for g in listed
                                        if replay_prefix and g.startswith(replay_prefix) and g not in groups])
        return [g for g in listed if g in groups] + [o.name for o in replays]

    def _delete_groups(self, groups: Sequence[str], replay_prefix: str | None) -> bool:
        """One round: DeleteGroups works on share groups too; one with members (a SIGKILLed member still
        timing out) waits for the next round."""
        self.delete_groups_once(self._groups(groups, replay_prefix))
        return not self._groups(groups, replay_prefix)
