"""Kafka as the harness sees it: lag, group membership, deleting what the kit made, reading a topic.

The AdminClient plumbing behind every stack on Kafka (``kafka_app``'s consumer
groups, ``kafka_share_app``'s share groups, whose ``ShareAdmin`` extends
``Admin``, ``celery_app``'s Celery over kombu's confluentkafka transport), as
``rabbitmq.py`` is for the RabbitMQ stacks: every call here is a read of the
broker's own view or a cleanup of the objects the kit created, by name. Nothing
here consumes on behalf of a worker. ``KafkaLogStack`` is ``LogStack`` on
Kafka: what ``kafka_app`` and ``kafka_share_app`` share on the driver's side.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec, ResourceType

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope, encode
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for
from queuekit.stacks.base import PublishReport
from queuekit.stacks.log import LogStack
from queuekit.stacks.manifest import KitObject, owned
from queuekit.stacks.reset import Purged

LOG = logging.getLogger("queuekit.kafka.admin")
REQUEST_TIMEOUT = 10.0  # seconds per admin request: a poll fails fast and is retried
DELETE_TIMEOUT = 60.0


def admin_client(settings: Settings, client_id: str = "qk.admin") -> AdminClient:
    config: dict = {"bootstrap.servers": settings.kafka_bootstrap, "client.id": client_id,
                     "logger": LOG, "log.connection.close": False}  # librdkafka's lines as Python log records
    return AdminClient(config)


class Publisher:
    """The publishing side of the stacks on Kafka: one producer, made on first use by ``make`` (the app's
    own idempotent ``acks=all`` config), whose delivery report per record is what ``publish`` counts."""

    def __init__(self, make: Callable[[], Producer]):
        self._make = make
        self._producer: Producer | None = None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = self._make()
        return self._producer

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None

    def publish(self, topic: str, envelopes: Sequence[Envelope]) -> PublishReport:
        """Each envelope keyed by its partition key (one user's records share a partition, in order)."""
        counts, t0 = {"ok": 0, "failed": 0}, time.monotonic()

        def on_delivery(err, _msg) -> None:  # the broker's answer per record (acks=all)
            counts["failed" if err else "ok"] += 1

        for env in envelopes:
            self._produce(topic, encode(env), env.body.partition_key.encode(), on_delivery)
        self._settle()
        return PublishReport(confirmed=counts["ok"], refused=counts["failed"], seconds=time.monotonic() - t0,
                             broker_messages=counts["ok"])

    def publish_raw(self, topic: str, payload: bytes) -> None:
        failed: list = []
        self._produce(topic, payload, None, lambda err, _: None if err is None else failed.append(err))
        self._settle()
        if failed:
            raise KitError(f"Kafka refused the raw record: {failed[0]}")

    def _produce(self, topic: str, value: bytes, key: bytes | None, on_delivery) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=on_delivery)
                return
            except BufferError:  # the local queue is full: serve delivery reports until there is room
                self.producer.poll(0.1)

    def _settle(self, timeout: float = 30.0) -> None:
        if self.producer.flush(timeout):  # still undelivered: purge, so each is reported as failed, not lost
            self.producer.purge()
            self.producer.flush(5)


class Admin:
    """An AdminClient that is replaced after a failed call (see ``_renewed_on_error``)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client = self.new_client()

    def new_client(self) -> AdminClient:
        return admin_client(self.settings)

    @contextmanager
    def _renewed_on_error(self) -> Iterator[None]:
        """Polled admin calls: after a failure the next poll gets a new client. An AdminClient was seen
        timing out on every consumer-group request after a broker restart while a new one answered at once."""
        try:
            yield
        except KafkaException:
            self.client = self.new_client()
            raise

    def topics(self, timeout: float = 10) -> dict:
        return self.client.list_topics(timeout=timeout).topics

    def partitions(self, topic: str) -> list[int]:
        return list(self.client.list_topics(topic, timeout=10).topics[topic].partitions)

    def retained(self, topic: str) -> int:
        """Records ``topic`` holds now: high minus low watermark, summed over its partitions."""
        return self._records(topic, self.topics()[topic])

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

    # -- lag: how far each group's committed offsets trail the log ----------------------------
    def lag(self, subscriptions: Sequence[tuple[str, str]]) -> dict[str, int]:
        """Per (group, topic): high watermark minus committed offset (from the log start when none)."""
        with self._renewed_on_error():
            metadata = self.topics()
            per_group = {}
            for group, topic in subscriptions:
                if topic not in metadata:
                    continue  # not declared (reset, not started): nothing to consume
                tps = [TopicPartition(topic, p) for p in metadata[topic].partitions]
                request = [ConsumerGroupTopicPartitions(group, tps)]
                committed = self.client.list_consumer_group_offsets(request, request_timeout=REQUEST_TIMEOUT)[group]
                ends = self.client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=REQUEST_TIMEOUT)
                starts = self.client.list_offsets({tp: OffsetSpec.earliest() for tp in tps},
                                                  request_timeout=REQUEST_TIMEOUT)
                total = 0
                for tp in committed.result().topic_partitions:
                    key = TopicPartition(tp.topic, tp.partition)
                    high, low = ends[key].result().offset, starts[key].result().offset
                    total += high - (tp.offset if tp.offset >= 0 else low)
                per_group[group] = total
            return per_group

    # -- membership ---------------------------------------------------------------------------
    def groups_ready(self, expected: dict[str, tuple[str, int]]) -> bool:
        """group -> (topic, members): each group STABLE with exactly that many members and every partition assigned."""
        with self._renewed_on_error():
            metadata = self.topics(timeout=5)
            futures = self.client.describe_consumer_groups(list(expected), request_timeout=REQUEST_TIMEOUT)
            descriptions = {group: future.result() for group, future in futures.items()}
        for group, (topic, members) in expected.items():
            desc = descriptions[group]
            assigned = {tp.partition for m in desc.members for tp in m.assignment.topic_partitions if tp.topic == topic}
            if (desc.state != ConsumerGroupState.STABLE or len(desc.members) != members
                    or assigned != set(metadata[topic].partitions)):
                return False
        return True

    def describe_groups(self, groups: Sequence[str]) -> str:
        try:
            futures = self.client.describe_consumer_groups(list(groups))
            return "; ".join(f"{g}: {f.result().state.name}, {len(f.result().members)} members"
                             for g, f in futures.items())
        except Exception as exc:  # noqa: BLE001 - a description for a timeout message
            return f"could not describe groups: {exc}"

    def broker_min_session_ms(self) -> int:
        """The broker's ``group.min.session.timeout.ms``: a consumer asking for less is refused."""
        broker = next(iter(self.client.list_topics(timeout=10).brokers))
        resource = ConfigResource(ResourceType.BROKER, str(broker))
        return int(self.client.describe_configs([resource])[resource].result()["group.min.session.timeout.ms"].value)

    # -- cleanup: only what the kit created, by name ---------------------------------------------
    def delete_kit_objects(self, topics: Sequence[str], groups: Sequence[str], group_prefix: str | None,
                           dead_letter_topics: Sequence[str], purged: Purged) -> None:
        """Delete these topics and groups (and, with ``group_prefix``, the groups starting with it: the kit's
        throwaway replay groups), nothing else; what existed, and the records each dead-letter topic held,
        noted in ``purged``."""
        existing = self.topics()
        purged.dead({t: self._records(t, existing[t]) for t in dead_letter_topics if t in existing})
        purged.deleted("group", self._groups(groups, group_prefix))
        wait_for(lambda: self._delete_groups(groups, group_prefix), timeout=DELETE_TIMEOUT,
                 what="the kit's consumer groups to be deleted",
                 describe=lambda: f"groups left: {self._groups(groups, group_prefix)}")
        doomed = [t for t in topics if t in existing]
        self.delete_topics(doomed)
        purged.deleted("topic", doomed)

    def delete_topics(self, names: Sequence[str]) -> None:
        """Delete these topics (one already gone is fine) and wait until the broker no longer lists them."""
        if names:
            for future in self.client.delete_topics(list(names), operation_timeout=30).values():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise
        wait_for(lambda: not set(names) & set(self.topics()), timeout=DELETE_TIMEOUT,
                 what="the kit's topics to be deleted")

    def _records(self, topic: str, metadata) -> int:
        tps = [TopicPartition(topic, p) for p in metadata.partitions]
        ends = self.client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=REQUEST_TIMEOUT)
        starts = self.client.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=REQUEST_TIMEOUT)
        return sum(ends[tp].result().offset - starts[tp].result().offset for tp in tps)

    def _groups(self, groups: Sequence[str], prefix: str | None) -> list[str]:
        """Of the listed groups: these, and the throwaway ones starting ``prefix`` (on a shared broker only
        those this install recorded: by name, never a foreign group sharing the prefix)."""
        listed = [g.group_id for g in self.client.list_consumer_groups().result(timeout=10).valid]
        throwaway = owned(self.settings, [KitObject("kafka", "group", g) for g in listed
                                          if prefix and g.startswith(prefix) and g not in groups])
        return [g for g in listed if g in groups] + [o.name for o in throwaway]

    def _delete_groups(self, groups: Sequence[str], prefix: str | None) -> bool:
        """One round: delete what can be; a group with members (still timing out) waits for the next."""
        self.delete_groups_once(self._groups(groups, prefix))
        return not self._groups(groups, prefix)

    def delete_groups_once(self, present: Sequence[str]) -> None:
        """DeleteGroups (consumer and share groups alike); a group with members answers NON_EMPTY_GROUP
        and is left for the caller's next round."""
        if present:
            for future in self.client.delete_consumer_groups(list(present)).values():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() not in (KafkaError.GROUP_ID_NOT_FOUND, KafkaError.NON_EMPTY_GROUP):
                        raise


class KafkaLogStack(LogStack):
    """``LogStack`` on Kafka: ``admin`` an ``Admin``, ``publisher`` a ``Publisher``; a topic is read by a
    throwaway reader (``new_reader``: assign() from the beginning, never joins, never commits)."""

    admin: Admin
    publisher: Publisher

    def new_reader(self) -> Consumer:
        """The app's reader config (its client id and group name, its isolation level)."""
        raise NotImplementedError(f"{type(self).__name__}.new_reader")

    def read_log(self, topic: str, timeout: float = 30.0) -> list[Any]:
        metadata = self.admin.topics()
        if topic not in metadata:
            return []  # not declared (reset, never started): nothing was written to it
        partitions = list(metadata[topic].partitions)
        reader = self.new_reader()
        try:
            reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            return read_until(reader, topic, partitions, timeout)
        finally:
            reader.close()


def read_until(reader, topic: str, partitions: Sequence[int], timeout: float) -> list:
    """Poll ``reader`` (assigned or subscribed to ``topic``) until it has read each partition up to the
    high watermark it had when we started; return the records in (partition, offset) order.

    "Read up to" is the reader's position, not the last record's offset: a transactionally written
    topic ends with a commit marker that poll() never returns but steps over."""
    marks = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
    todo = {p for p, (low, high) in marks.items() if high > low}
    records = []

    def read_one() -> bool:
        msg = reader.poll(0.2)  # blocks until a record arrives: no busy loop
        if msg is not None and not msg.error() and msg.offset() < marks[msg.partition()][1]:
            records.append(msg)  # (records appended after we looked are not ours to count)
        for tp in reader.position([TopicPartition(topic, p) for p in todo]):
            if tp.offset >= marks[tp.partition][1]:
                todo.discard(tp.partition)
        return not todo

    if todo:
        wait_for(read_one, timeout=timeout, interval=0.0, max_interval=0.0, what=f"{topic} read to its high watermark")
    return sorted(records, key=lambda m: (m.partition(), m.offset()))  # partitions arrive interleaved
