"""Kafka as the share-group harness sees it: topics, group configuration, membership, lag, cleanup.

Group settings live on the broker, per group (KIP-932): the AdminClient's
``incremental_alter_configs`` on a GROUP resource sets them before any member
joins. Membership and lag come from ``wire.py`` (the Python admin cannot
describe share groups yet). Nothing here consumes on behalf of a worker.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, OffsetSpec, ResourceType

from queuekit.core.config import Settings
from queuekit.core.waiting import wait_for
from queuekit.stacks.manifest import KitObject, owned

from . import clients, wire

REQUEST_TIMEOUT = 10.0
DELETE_TIMEOUT = 60.0
DLQ_TOPIC_CONFIG = {"errors.deadletterqueue.group.enable": "true"}  # the topic's owner allows group DLQ writes


class ShareAdmin:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.client = clients.admin(settings)

    def topics(self, timeout: float = 10) -> dict:
        return self.client.list_topics(timeout=timeout).topics

    def partitions(self, topic: str) -> list[int]:
        return list(self.client.list_topics(topic, timeout=10).topics[topic].partitions)

    # -- declaring ---------------------------------------------------------------------------
    def declare_topics(self, names: Sequence[str], partitions: int, config: Mapping[str, str] | None = None,
                       timeout: float = 30.0) -> None:
        """Create the topics with the broker's default replication (1 single node, 3 cluster); an existing one is kept."""
        def create_missing() -> bool:
            existing = self.topics(timeout=5)
            missing = [n for n in names if n not in existing]
            if missing:
                new = [NewTopic(n, partitions, -1, config=dict(config or {})) for n in missing]
                for future in self.client.create_topics(new, operation_timeout=10).values():
                    try:
                        future.result()
                    except KafkaException as exc:  # a topic still being deleted says so: try again
                        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                            raise
            metadata = self.topics(timeout=5)
            return all(n in metadata and metadata[n].error is None and metadata[n].partitions for n in names)

        wait_for(create_missing, timeout=timeout, what=f"Kafka topics {', '.join(names)}")

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

    # -- cleanup: only what the kit created, by name ---------------------------------------------
    def delete_groups_and_topics(self, topics: Sequence[str], groups: Sequence[str], replay_prefix: str) -> None:
        """Delete these share groups and topics BY NAME, and the throwaway replay groups (``replay_prefix``;
        on a shared broker only those this install recorded), nothing else."""
        wait_for(lambda: self._delete_groups(groups, replay_prefix), timeout=DELETE_TIMEOUT,
                 what="the kit's share groups to be deleted",
                 describe=lambda: f"groups left: {self._groups(groups, replay_prefix)}")
        existing = self.topics()
        ours = [t for t in topics if t in existing]
        if ours:
            for future in self.client.delete_topics(ours, operation_timeout=30).values():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise
        wait_for(lambda: not set(topics) & set(self.topics()), timeout=DELETE_TIMEOUT,
                 what="the kit's share-group topics to be deleted")

    def _groups(self, groups: Sequence[str], replay_prefix: str) -> list[str]:
        listed = wire.list_share_groups(self.bootstrap)
        replays = owned(self.settings, [KitObject("kafka", "group", g) for g in listed
                                        if g.startswith(replay_prefix) and g not in groups])
        return [g for g in listed if g in groups] + [o.name for o in replays]

    def _delete_groups(self, groups: Sequence[str], replay_prefix: str) -> bool:
        """One round: DeleteGroups works on share groups too; one with members (a SIGKILLed member still
        timing out) answers NON_EMPTY_GROUP and waits for the next round."""
        present = self._groups(groups, replay_prefix)
        if present:
            for future in self.client.delete_consumer_groups(present).values():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() not in (KafkaError.GROUP_ID_NOT_FOUND, KafkaError.NON_EMPTY_GROUP):
                        raise
        return not self._groups(groups, replay_prefix)
