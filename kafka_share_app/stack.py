"""``KafkaShareStack``: Kafka 4.4 share groups (KIP-932, "queues for Kafka") through confluent-kafka's
``ShareConsumer`` (preview in 2.16), behind the Stack protocol.

* Supports work sharing beyond partitions: Yes — the broker assigns a partition
  to several members; records, not partitions, are handed out (locked per record).
* Supports fan-out: Yes — one share group per service on the same topic.
* Supports per-key order: No — records of one partition go to whichever member
  fetches; a released record is delivered again out of order.
* Supports retries: Yes, RELEASE — redelivered at once (no delay, no backoff),
  the broker counts deliveries; ``share.delivery.count.limit`` caps them.
* Supports dead-lettering: Yes, native — REJECT (or the delivery limit) makes the
  broker write the record to the group's ``dlq.qks.<service>`` topic (KIP-1191);
  the reason is the adapter's note in ``qks.<service>.dlq-reasons`` (a REJECT has none).
* Supports ack on receipt: Yes — ``early_ack`` ACCEPTs before handling.
* Supports transactions: No — acknowledgements cannot join a Kafka transaction.
* Supports replay: Yes — the log is still a log: a new share group with
  ``share.auto.offset.reset=earliest`` reads what is retained.
* Lease: the record lock — a record not acknowledged within
  ``share.record.lock.duration.ms`` is taken back and delivered again, even
  while its handler still runs (the client cannot renew a lock).

Options, as this stack honours them:

- ``workers`` / ``concurrency``: processes x ShareConsumer threads; every one is a
  member of every share group of the workload, and all may get records.
- ``prefetch``: ``max.poll.records`` — records acquired (locked) per poll (best-effort in librdkafka).
- ``guard``: passed to ``process()``.
- ``max_retries``: a failing record is RELEASEd until delivery ``max_retries + 1``,
  then REJECTed; the group's delivery count limit is ``max_retries + 1`` too
  (within the broker's 2..10), so a record that keeps crashing its worker ends
  in the DLQ as well.
- ``backoff_ms``: ignored — a RELEASEd record is available again at once.
- ``early_ack``: ACCEPT (and commit) before the handler: at-most-once.
- ``partitions``: of every topic; the key is the user id (placement only: no order is kept).
- ``queue_max_length``: ignored (a topic refuses no producer; lag grows).
- ``extra``: ``record_lock_ms`` (default 30000, the broker's; 1000..60000 here:
  the kit's broker lowers the 15 s floor), ``session_timeout_ms`` (default 3000:
  how long a SIGKILLed member keeps its assignment), ``max_poll_interval_ms``;
  ``ack``: ``"record"`` (default: one ``commit_sync`` per record, written for clarity) or
  ``"batch"`` (written for throughput: acknowledged in the client as handled, ONE commit per poll
  of up to ``batch_records`` (default 500) records; redelivery window: a SIGKILL before the commit
  re-delivers the whole batch, the idempotency guard absorbs what was applied — ``acks.py``).

Broker view: ``backlog`` is the broker's share-group lag (DescribeShareGroupOffsets v1:
records neither acknowledged nor archived), summed over the workload's groups.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from confluent_kafka import OFFSET_BEGINNING, AcknowledgeType, TopicPartition

from queuekit.core.envelope import Envelope
from queuekit.core.waiting import wait_for
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.kafka import Publisher

from . import clients, topology
from .acks import coordinates
from .admin import DLQ_TOPIC_CONFIG, ShareAdmin

RECORD_LOCK_MS = 30_000  # the broker's default share.record.lock.duration.ms
SESSION_TIMEOUT_MS = 3_000
HEARTBEAT_MS = 1_000
DELIVERY_LIMITS = (2, 10)  # the broker's group.share.{min,max}.delivery.count.limit


class KafkaShareStack(Stack):
    name = "kafka_share"
    worker_module = "kafka_share_app.worker"
    capabilities = Capabilities(
        broker="kafka",
        native_fanout=True,  # a share group per service: each group sees every record of the topic
        per_key_order=False,  # records of a partition go to whichever member fetches; RELEASE reorders
        replayable=True,  # acknowledging does not delete: a new share group reads the retained log
        dead_letter="native",  # the broker writes REJECTed / over-limit records to the group's dlq.* topic
        ack_on_receipt_possible=True,  # early_ack: ACCEPT before handling
        transactions=False,  # share acknowledgements cannot join a Kafka transaction (KIP-932)
        pull_based=True,  # members fetch; producers never see back-pressure
        # max.poll.interval.ms (3 s) did not take a 6 s task away (long-task); what does is the record lock,
        # declared as lease="record" below.
        evicts_slow_consumer=False,
        work_sharing_beyond_partitions=True,  # a partition can be assigned to several members
        delivery_limit=True,  # share.delivery.count.limit: the broker archives (dead-letters) after N deliveries
        lease="record",  # the per-record acquisition lock; the client cannot renew it
    )

    throughput_options = {"ack": "batch"}  # the bench's "written for throughput" row: one commit per poll

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self.admin = ShareAdmin(settings)
        self.publisher = Publisher(lambda: clients.producer(self.settings, f"{topology.PREFIX}publisher"))

    # -- the template's hooks ------------------------------------------------------------
    def declare(self) -> None:
        routes = [r for w in self.workloads for r in topology.routes(w)]
        data = [t for w in self.workloads for t in topology.topics(w)]
        self.admin.declare_topics(list(dict.fromkeys(data)), self.options.partitions)
        self.admin.declare_topics([r.dlq_topic for r in routes], 1, DLQ_TOPIC_CONFIG)
        for route in routes:
            self.admin.configure_group(route.group, self.group_config(route))

    def group_config(self, route: topology.Route) -> dict[str, str]:
        """The share group's own settings, on the broker: members read them when they join."""
        extra, low_high = self.options.extra, DELIVERY_LIMITS
        return {
            "share.auto.offset.reset": "earliest",  # a new group starts at the log's start (default: latest)
            # How long a delivered record stays locked to its member; past it the broker takes it back.
            "share.record.lock.duration.ms": str(int(extra.get("record_lock_ms", RECORD_LOCK_MS))),
            # Deliveries before the broker archives a record (dead-letters it): retries + the first attempt.
            "share.delivery.count.limit": str(min(max(self.options.max_retries + 1, low_high[0]), low_high[1])),
            # A member silent this long is removed; what it held is released.
            "share.session.timeout.ms": str(int(extra.get("session_timeout_ms", SESSION_TIMEOUT_MS))),
            "share.heartbeat.interval.ms": str(HEARTBEAT_MS),
            "errors.deadletterqueue.topic.name": route.dlq_topic,  # KIP-1191: the broker writes it
            "errors.deadletterqueue.copy.record.enable": "true",  # with the original key and value, not headers only
        }

    def _expected_members(self) -> dict[str, tuple[str, int]]:
        live = len(self.worker_pids()) * self.options.concurrency
        return {r.group: (r.source, live) for w in self.workloads for r in topology.routes(w)}

    def consumers_ready(self) -> bool:
        return self.admin.groups_ready(self._expected_members())

    def describe_consumers(self) -> str:
        return f"share groups: {self.admin.describe_groups(list(self._expected_members()))}"

    def close_clients(self) -> None:
        self.publisher.close()

    def purge(self) -> None:
        self.admin.delete_groups_and_topics([topology.PREFIX, topology.DLQ_PREFIX])

    # -- producing -----------------------------------------------------------------
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        return self.publisher.publish(topology.entry_topic(workload), envelopes)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        self.publisher.publish_raw(topology.entry_topic(workload), payload)

    # -- the broker's view -----------------------------------------------------------
    def lag(self, workload: str) -> dict[str, int]:
        return self.admin.lag(topology.subscriptions(workload))

    def backlog(self, workload: str) -> int:
        return sum(self.lag(workload).values())

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        wait_for(lambda: self.backlog(workload) == 0, timeout=timeout,
                 what=f"every {workload} share group's lag to reach 0 (all acknowledged or archived)",
                 describe=lambda: f"lag per share group: {self.lag(workload)}")

    def in_flight(self) -> dict[str, int]:
        """Pull-based: the broker does not report per member what it acquired; nothing is pushed ahead of poll()."""
        return {}

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """The broker-written records of each group's dlq.* topic, with the adapter's reason where it noted one."""
        metadata = self.admin.topics()
        found: list[DeadLetter] = []
        for route in topology.routes(workload):
            if route.dlq_topic not in metadata:
                continue
            reasons = {m.key().decode(): json.loads(m.value())["reason"]
                       for m in self._read_all(route.reasons_topic, metadata) if m.key()}
            for m in self._read_all(route.dlq_topic, metadata):
                h = {k: (v or b"").decode() for k, v in m.headers() or ()}
                where = coordinates(h.get("__dlq.errors.topic"), h.get("__dlq.errors.partition"),
                                    h.get("__dlq.errors.offset"))
                broker_says = f"broker: {h.get('__dlq.errors.message', '')} (delivery {h.get('__dlq.errors.delivery.count')})"
                why = f"{broker_says}; {reasons[where]}" if where in reasons else broker_says  # the handler's reason last
                found.append(DeadLetter(service=route.service, payload=m.value() or b"", reason=why))
        return found

    def _read_all(self, topic: str, metadata: dict, timeout: float = 30.0) -> list:
        if topic not in metadata:
            return []
        reader = clients.reader(self.settings)
        try:
            partitions = list(metadata[topic].partitions)
            reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            marks = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
            todo = {p for p, (low, high) in marks.items() if high > low}
            records: list = []

            def read_one() -> bool:
                msg = reader.poll(0.2)
                if msg is not None and not msg.error() and msg.offset() < marks[msg.partition()][1]:
                    records.append(msg)
                for tp in reader.position([TopicPartition(topic, p) for p in todo]):
                    if tp.offset >= marks[tp.partition][1]:
                        todo.discard(tp.partition)
                return not todo

            if todo:
                wait_for(read_one, timeout=timeout, interval=0.0, max_interval=0.0, what=f"{topic} read to its end")
            return sorted(records, key=lambda m: (m.partition(), m.offset()))
        finally:
            reader.close()

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new share group (``share.auto.offset.reset=earliest``) reads the entry topic: how many records."""
        topic = topology.entry_topic(workload)
        group = f"{topology.PREFIX}replay.{uuid.uuid4().hex[:8]}"
        self.admin.configure_group(group, {"share.auto.offset.reset": "earliest"})
        retained = sum(high - low for high, low in self._marks(topic))
        consumer = clients.share_consumer(self.settings, group, group, self.options)
        seen: set[tuple[int, int]] = set()
        try:
            consumer.subscribe([topic])

            def read() -> bool:
                for msg in consumer.poll(0.5):
                    if not msg.error():
                        seen.add((msg.partition(), msg.offset()))
                        consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
                return len(seen) >= retained

            if retained:
                wait_for(read, timeout=timeout, interval=0.0, max_interval=0.0, what=f"{topic} read by a new share group",
                         describe=lambda: f"{len(seen)} of {retained} records")
            return len(seen)
        finally:
            consumer.close()

    def _marks(self, topic: str) -> list[tuple[int, int]]:
        reader = clients.reader(self.settings)
        try:
            return [reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[::-1]
                    for p in self.admin.partitions(topic)]
        finally:
            reader.close()

    def fault_target(self, service: str) -> str:
        """The topic ``service``'s share group reads (its partition 0's leader is what a cluster fault hurts)."""
        return topology.Route(service).source
