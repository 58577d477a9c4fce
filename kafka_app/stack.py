"""``KafkaStack``: plain confluent-kafka consumer groups on Kafka (KRaft), behind the Stack protocol.

Options, as this stack honours them:

- ``workers``: worker OS processes (``python -m kafka_app.worker``); each is a
  member of every group of the workload.
- ``concurrency``: consumer threads per service per process; each thread is
  its own group member. A service's parallelism is at most ``partitions``:
  extra members get no partition and sit idle.
- ``prefetch``: ignored (pull-based). A member handles one record at a time;
  what librdkafka prefetches into memory is not "in flight": nothing is
  committed past the record being handled.
- ``guard``: passed to ``process()`` (the ledger's idempotency guard).
- ``max_retries`` / ``backoff_ms``: a failed record goes to ``qk.<service>.retry``
  with a not-before time ``backoff_ms * 2**(attempt-1)`` ahead; the retry group
  holds it (partition paused) until then; after ``max_retries`` retries it goes
  to ``qk.<service>.dlq``.
- ``early_ack``: the offset is stored before handling instead of after
  (at-most-once: a SIGKILL can lose the record in hand).
- ``partitions``: partitions of every topic of the workload (retry and DLQ too);
  the record key is the user id, so one user's records stay in order.
- ``queue_max_length``: ignored. A Kafka topic has no length bound that refuses
  producers; retention deletes old segments instead, and the producer never
  sees back-pressure from consumers (lag just grows).
- ``extra``: ``session_timeout_ms`` (default 2000, or the broker's
  ``group.min.session.timeout.ms`` if higher: how long a SIGKILLed member
  keeps its partitions) and ``max_poll_interval_ms`` (default 300000: a member
  whose handler runs longer leaves the group and its record is re-delivered).
  ``transactional`` (default False): consume-transform-produce exactly-once —
  each record's outputs (forward, retry, DLQ) and its input offset commit in
  one Kafka transaction; consumers read ``read_committed``; auto-commit is off
  and ``early_ack`` has no effect. ``transaction_timeout_ms`` (default 5000):
  how soon the coordinator aborts a dead worker's open transaction (readers
  of its partitions wait at it until then, plus up to the broker's 10 s sweep).
  ``long_task``: ``"block"`` (default: handle inside the poll loop; a handler
  longer than ``max_poll_interval_ms`` gets its member evicted and the record
  handled again elsewhere) or ``"pause-resume"`` (pause the member's
  partitions, handle in a worker thread, keep polling, resume when done).

Broker view: ``backlog`` is the sum, over every group of the workload (retry
groups included, DLQ not), of high watermark minus committed offset; ``drain``
waits for it to reach 0. Commits trail processing by up to the auto-commit
interval (200 ms); with transactions, up to an idle poll (0.5 s) for the step
over the last commit marker.
"""
from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

from confluent_kafka import (OFFSET_BEGINNING, ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError,
                             KafkaException, TopicPartition)
from confluent_kafka.admin import ConfigResource, OffsetSpec, ResourceType

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope, encode
from queuekit.core.errors import KitError, WaitTimeout
from queuekit.core.options import StackOptions
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.core.waiting import wait_for
from queuekit.stacks.pool import WorkerPool

from . import clients, topology
from .consumers import header

READY_TIMEOUT = 60.0
ADMIN_TIMEOUT = 10.0  # seconds per admin request: a poll fails fast and is retried
DELETE_TIMEOUT = 60.0


class KafkaStack(Stack):
    name = "kafka"
    broker = "kafka"
    native_fanout = True  # a consumer group per service: every group reads the whole topic
    native_dead_letter = False  # the DLQ topic is written by our consumer code
    replayable = True  # consuming does not delete: a new group (or a seek) reads the log again

    def __init__(self, settings: Settings, ledger_path: Path):
        super().__init__(settings, ledger_path)
        self.admin = clients.admin(settings)
        self.pool: WorkerPool | None = None
        self.workloads: list[str] = []
        self.options = StackOptions()
        self._producer = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self, workloads: Sequence[str], options: StackOptions = StackOptions()) -> None:
        topics = [t for w in workloads for t in topology.topics(w)]
        topology.declare(self.admin, list(dict.fromkeys(topics)), options.partitions)
        session_ms = max(clients.SESSION_TIMEOUT_MS, self._broker_min_session_ms())  # the broker refuses less
        self.options = replace(options, extra={"session_timeout_ms": session_ms, **options.extra})
        self.workloads = list(workloads)
        self.pool = self.new_pool(self.options)
        for index in range(options.workers):
            self._spawn_worker(index)
        try:
            self.pool.wait_ready(self._groups_ready, timeout=READY_TIMEOUT,
                                 what="every Kafka group to have all its members and every partition assigned")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; groups: {self._describe_groups()}") from None

    def _spawn_worker(self, index: int) -> None:
        self.pool.spawn(self.pool.python("kafka_app.worker", *self.workloads), index)

    def _wait_workers_ready(self) -> None:
        """Until each group has exactly the live workers' members (a SIGKILLed one must time out first)."""
        wait_for(self._groups_ready, timeout=READY_TIMEOUT, what="every live Kafka worker to have its partitions",
                 describe=self._describe_groups)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()  # SIGTERM: each member closes, committing its stored offsets
            self.pool = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None

    def kill_worker(self, index: int) -> int:
        return self.pool.kill(index)  # the consumers are threads of this very process

    # -- producing -----------------------------------------------------------------
    @property
    def producer(self):
        if self._producer is None:
            self._producer = clients.producer(self.settings, "qk.publisher")
        return self._producer

    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        topic, counts, t0 = topology.entry_topic(workload), {"ok": 0, "failed": 0}, time.monotonic()

        def on_delivery(err, _msg) -> None:  # the broker's answer per record (acks=all)
            counts["failed" if err else "ok"] += 1

        for env in envelopes:
            self._produce(topic, encode(env), env.body.partition_key.encode(), on_delivery)
        self._settle()
        return PublishReport(confirmed=counts["ok"], refused=counts["failed"], seconds=time.monotonic() - t0)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        failed: list = []
        self._produce(topology.entry_topic(workload), payload, None, lambda err, _: err and failed.append(err))
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

    # -- the broker's view -----------------------------------------------------------
    def lag(self, workload: str) -> dict[str, int]:
        """Per group of the workload: high watermark minus committed offset, summed over partitions."""
        with self._admin_renewed_on_error():
            return self._lag(workload)

    def _lag(self, workload: str) -> dict[str, int]:
        metadata = self.admin.list_topics(timeout=10).topics
        per_group = {}
        for group, topic in topology.subscriptions(workload):
            if topic not in metadata:
                continue  # not declared (reset, not started): nothing to consume
            tps = [TopicPartition(topic, p) for p in metadata[topic].partitions]
            request = [ConsumerGroupTopicPartitions(group, tps)]
            committed = self.admin.list_consumer_group_offsets(request, request_timeout=ADMIN_TIMEOUT)[group]
            committed = committed.result().topic_partitions
            ends = self.admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=ADMIN_TIMEOUT)
            starts = self.admin.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=ADMIN_TIMEOUT)
            total = 0
            for tp in committed:
                key = TopicPartition(tp.topic, tp.partition)
                high, low = ends[key].result().offset, starts[key].result().offset
                total += high - (tp.offset if tp.offset >= 0 else low)  # no commit yet: from the log start
            per_group[group] = total
        return per_group

    def backlog(self, workload: str) -> int:
        return sum(self.lag(workload).values())

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        wait_for(lambda: self.backlog(workload) == 0, timeout=timeout,
                 what=f"every {workload} group's committed offsets to reach the high watermarks",
                 describe=lambda: f"lag per group: {self.lag(workload)}")

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """Every record of the workload's DLQ topics, read by a reader that never commits."""
        metadata = self.admin.list_topics(timeout=10).topics
        found: list[DeadLetter] = []
        for route in topology.routes(workload):
            topic = metadata.get(route.dlq_topic)
            if topic is None:
                continue
            reader = clients.reader(self.settings)
            try:
                reader.assign([TopicPartition(route.dlq_topic, p, OFFSET_BEGINNING) for p in topic.partitions])
                found += [DeadLetter(service=header(m, "service") or route.service, payload=m.value(),
                                     reason=header(m, "reason") or "")
                          for m in _read_until(reader, route.dlq_topic, list(topic.partitions), timeout=30)]
            finally:
                reader.close()
        return found

    def in_flight(self) -> dict[str, int]:
        """Pull-based: nothing is pushed to a consumer ahead of its poll(), so nothing is 'delivered, unacked'."""
        return {}

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new group (``auto.offset.reset=earliest``) reads the entry topic's retained log: how many."""
        topic = topology.entry_topic(workload)
        partitions = self.admin.list_topics(topic, timeout=10).topics[topic].partitions
        group = f"{topology.PREFIX}replay.{uuid.uuid4().hex[:8]}"
        reader = clients.replayer(self.settings, group)
        try:
            reader.subscribe([topic])  # a real group member: replay is "a new group", not a special API
            return len(_read_until(reader, topic, list(partitions), timeout))
        finally:
            reader.close()

    # -- reset -------------------------------------------------------------------------
    def reset(self) -> None:
        """Stop our workers, delete every ``qk.*`` group and topic, and wait until they are gone."""
        self.stop()
        wait_for(self._delete_groups, timeout=DELETE_TIMEOUT, what="every qk.* consumer group to be deleted",
                 describe=lambda: f"groups left: {self._our_groups()}")
        topics = [t for t in self.admin.list_topics(timeout=10).topics if t.startswith(topology.PREFIX)]
        if topics:
            for future in self.admin.delete_topics(topics, operation_timeout=30).values():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise
        wait_for(lambda: not any(t.startswith(topology.PREFIX) for t in self.admin.list_topics(timeout=10).topics),
                 timeout=DELETE_TIMEOUT, what="every qk.* topic to be deleted")

    def _our_groups(self) -> list[str]:
        listing = self.admin.list_consumer_groups().result(timeout=10)
        return [g.group_id for g in listing.valid if g.group_id.startswith(topology.PREFIX)]

    def _delete_groups(self) -> bool:
        """One round: delete what can be; a group with members (still timing out) waits for the next."""
        groups = self._our_groups()
        if groups:
            for future in self.admin.delete_consumer_groups(groups).values():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() not in (KafkaError.GROUP_ID_NOT_FOUND, KafkaError.NON_EMPTY_GROUP):
                        raise
        return not self._our_groups()

    # -- readiness ---------------------------------------------------------------------
    def _expected_members(self) -> dict[str, tuple[str, int]]:
        """group -> (topic, members): ``concurrency`` per live worker, one retry consumer per live worker."""
        live = len(self.pool.pids()) if self.pool else 0
        expected = {}
        for route in (r for w in self.workloads for r in topology.routes(w)):
            expected[route.group] = (route.source, live * self.options.concurrency)
            expected[route.retry_group] = (route.retry_topic, live)
        return expected

    def _groups_ready(self) -> bool:
        expected = self._expected_members()
        with self._admin_renewed_on_error():
            metadata = self.admin.list_topics(timeout=5).topics
            futures = self.admin.describe_consumer_groups(list(expected), request_timeout=ADMIN_TIMEOUT)
            descriptions = {group: future.result() for group, future in futures.items()}
        for group, (topic, members) in expected.items():
            desc = descriptions[group]
            assigned = {tp.partition for m in desc.members for tp in m.assignment.topic_partitions
                        if tp.topic == topic}
            if (desc.state != ConsumerGroupState.STABLE or len(desc.members) != members
                    or assigned != set(metadata[topic].partitions)):
                return False
        return True

    def _describe_groups(self) -> str:
        try:
            futures = self.admin.describe_consumer_groups(list(self._expected_members()))
            return "; ".join(f"{g}: {f.result().state.name}, {len(f.result().members)} members"
                             for g, f in futures.items())
        except Exception as exc:  # noqa: BLE001 - a description for a timeout message
            return f"could not describe groups: {exc}"

    @contextmanager
    def _admin_renewed_on_error(self) -> Iterator[None]:
        """Polled admin calls: after a failure the next poll gets a new client. An AdminClient was seen
        timing out on every consumer-group request after a broker restart while a new one answered at once."""
        try:
            yield
        except KafkaException:
            self.admin = clients.admin(self.settings)
            raise

    def _broker_min_session_ms(self) -> int:
        broker = next(iter(self.admin.list_topics(timeout=10).brokers))
        resource = ConfigResource(ResourceType.BROKER, str(broker))
        configs = self.admin.describe_configs([resource])[resource].result()
        return int(configs["group.min.session.timeout.ms"].value)


def _read_until(reader, topic: str, partitions: Sequence[int], timeout: float) -> list:
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
