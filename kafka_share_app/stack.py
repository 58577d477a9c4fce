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
- ``record_lock_ms`` (default 30000, the broker's; 1000..60000 here:
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
from collections.abc import Sequence
from typing import Any

from queuekit.stacks.base import DeadLetter
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import NO_LOSS, ClusterPromise, RetryTiming
from queuekit.stacks.kafka import KafkaLogStack, Publisher
from queuekit.stacks.manifest import KitObject, Listed
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import clients, topology, wire
from .acks import coordinates
from .admin import DLQ_TOPIC_CONFIG, ShareAdmin, group_config


class KafkaShareStack(KafkaLogStack):
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
        retry_delay="immediate",  # RELEASE makes the record available again at once (KIP-932 has no delay)
    )
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "kafka_share_app.raw_publisher:RawPublisher"
    observer = "kafka_share_app.observe"  # share-group lag as the broker counts it, its dlq.* topics
    libraries = ("confluent-kafka",)
    client_loggers = ("kafka_share_app.rdkafka",)  # incl. the share consumer's 'is in "Preview"' warning
    cluster = ClusterPromise(NO_LOSS, "acks=all, RF 3, min.insync 2, records ACCEPTed after the effect")
    # RELEASE makes the record available again at once (no delay in KIP-932): each retry comes well within
    # the 1 s asked for (10-182 ms seen on a loaded machine)
    retry_timing = RetryTiming(1000, "start", (0.0, 1.0), (0.0, 1.0))

    groups_noun = "share groups"
    admin: ShareAdmin

    throughput_options = {"ack": "batch"}  # the bench's "written for throughput" row: one commit per poll

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self.topology = topology
        self.admin = ShareAdmin(settings)
        self.publisher = Publisher(lambda: clients.producer(self.settings, f"{topology.PREFIX}publisher"))

    # -- the template's hooks (publish, lag, backlog, drain, readiness: KafkaLogStack) ----------------
    def declare(self) -> None:
        """Topics, then each service's share group configured on the broker before any member joins."""
        routes = [r for w in self.workloads for r in topology.routes(w)]
        data = [t for w in self.workloads for t in topology.topics(w)]
        self.admin.declare_topics(list(dict.fromkeys(data)), self.options.partitions)
        self.admin.declare_topics([r.dlq_topic for r in routes], 1, DLQ_TOPIC_CONFIG)
        for route in routes:
            self.admin.configure_group(route.group, group_config(route, self.options))

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        routes = [r for w in workloads for r in topology.routes(w)]
        topics = dict.fromkeys([t for w in workloads for t in topology.topics(w)] + [r.dlq_topic for r in routes])
        return [KitObject("kafka", "topic", t) for t in topics] + [KitObject("kafka", "group", r.group) for r in routes]

    def listed_objects(self, brokers: set[str]) -> Listed:
        """The admin client lists consumer groups only (confluent-kafka has no SHARE group type): ListGroups
        with the "share" type filter, on the wire, adds the share groups."""
        found = super().listed_objects(brokers)
        if "kafka" in found:
            found["kafka"] |= {("group", g) for g in wire.list_share_groups(self.settings.kafka_bootstrap)}
        return found

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The share groups and topics of ``workloads`` BY NAME (no workload shares one; never a foreign one
        sharing the prefix), and, with every workload, the throwaway replay groups (on a shared broker only
        those this install recorded)."""
        purged = Purged()
        objects = self.kit_objects(workloads)
        every = set(workloads) == set(WORKLOADS)
        self.admin.delete_groups_and_topics([o.name for o in objects if o.kind == "topic"],
                                            [o.name for o in objects if o.kind == "group"],
                                            topology.REPLAY_GROUPS if every else None,
                                            [r.dlq_topic for w in workloads for r in topology.routes(w)], purged)
        return purged

    # -- the broker's view -----------------------------------------------------------
    def new_reader(self):
        return clients.reader(self.settings)

    def route_dead_letters(self, route: topology.Route) -> list[DeadLetter]:
        """The broker-written records of the group's dlq.* topic, with the adapter's reason where it noted one."""
        reasons = {m.key().decode(): json.loads(m.value())["reason"] for m in self.read_log(route.reasons_topic) if m.key()}
        return [self.dead_letter(route, m, reasons) for m in self.read_log(route.dlq_topic)]

    def dead_letter(self, route: topology.Route, record: Any, reasons: dict[str, str] | None = None) -> DeadLetter:
        h = {k: (v or b"").decode() for k, v in record.headers() or ()}
        where = coordinates(h.get("__dlq.errors.topic"), h.get("__dlq.errors.partition"), h.get("__dlq.errors.offset"))
        broker_says = f"broker: {h.get('__dlq.errors.message', '')} (delivery {h.get('__dlq.errors.delivery.count')})"
        reasons = reasons or {}
        why = f"{broker_says}; {reasons[where]}" if where in reasons else broker_says  # the handler's reason last
        return DeadLetter(service=route.service, payload=record.value() or b"", reason=why)

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new share group (``share.auto.offset.reset=earliest``) reads the entry topic: how many records."""
        return self.admin.replay(topology.entry_topic(workload), self.options, timeout)
