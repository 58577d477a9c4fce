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
- ``early_ack``: the offset is committed (synchronously) before handling instead of stored after
  (at-most-once: a SIGKILL can lose the record in hand).
- ``partitions``: partitions of every topic of the workload (retry and DLQ too);
  the record key is the user id, so one user's records stay in order.
- ``queue_max_length``: ignored. A Kafka topic has no length bound that refuses
  producers; retention deletes old segments instead, and the producer never
  sees back-pressure from consumers (lag just grows).
- ``session_timeout_ms`` (default 2000, or the broker's
  ``group.min.session.timeout.ms`` if higher: how long a SIGKILLed member
  keeps its partitions) and ``max_poll_interval_ms`` (default 300000: a member
  whose handler runs longer leaves the group and its record is re-delivered).
- ``transactional`` (default False): consume-transform-produce exactly-once —
  each record's outputs (forward, retry, DLQ) and its input offset commit in
  one Kafka transaction; consumers read ``read_committed``; auto-commit is off
  and ``early_ack`` has no effect.
- ``transaction_timeout_ms`` (default 5000):
  how soon the coordinator aborts a dead worker's open transaction (readers
  of its partitions wait at it until then, plus up to the broker's 10 s sweep).
- ``long_task``: ``"block"`` (default: handle inside the poll loop; a handler
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

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from queuekit.core.options import StackOptions
from queuekit.stacks.base import DeadLetter
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import NO_LOSS, ClusterPromise, RetryTiming
from queuekit.stacks.kafka import Admin, KafkaLogStack, Publisher, read_until
from queuekit.stacks.manifest import KitObject, record
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import clients, topology
from .consumers import header


class KafkaStack(KafkaLogStack):
    name = "kafka"
    worker_module = "kafka_app.worker"
    capabilities = Capabilities(
        broker="kafka",
        native_fanout=True,  # a consumer group per service: every group reads the whole topic
        per_key_order=True,  # the key picks the partition; one member reads a partition, in order
        replayable=True,  # consuming does not delete: a new group (or a seek) reads the log again
        dead_letter="adapter",  # the DLQ topic is written by our consumer code
        ack_on_receipt_possible=True,  # commit the offset before handling (early_ack): at-most-once
        transactions=True,  # consume-transform-produce in a Kafka transaction (options.transactional)
        pull_based=True,  # consumers fetch; producers never see back-pressure, lag grows
        evicts_slow_consumer=True,  # a handler longer than max.poll.interval.ms gets its member evicted
        work_sharing_beyond_partitions=False,  # a partition has one reader per group: extra members idle
        lease="member",  # past max.poll.interval.ms the member is evicted and its partitions move
        # No delayed delivery: the retry topic holds a record until its not-before time, but only the kit's own
        # retries, capped at backoff_ms * 2**max_retries from now (consumers.not_before): not an API for "due at".
        delayed="none",
    )
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "kafka_app.raw_publisher:RawPublisher"
    observer = "kafka_app.observe"
    by_hand = "kafka_app.by_hand"
    libraries = ("confluent-kafka",)
    client_loggers = ("kafka_app.rdkafka",)  # kafka_app.clients routes librdkafka's log here
    cluster = ClusterPromise(NO_LOSS, "acks=all, RF 3, min.insync 2, offsets committed after the effect",
                             ci_faults=("partition",))
    bare_twin = "bare.kafka_worker:publish_backlog"
    retry_timing = RetryTiming(200, "finish", (0.2, None), (0.4, None))  # the retry topic's not-before time

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self.topology = topology
        self.admin = Admin(settings)
        self.publisher = Publisher(lambda: clients.producer(self.settings, f"{topology.PREFIX}publisher"))

    # -- the template's hooks (publish, lag, backlog, drain, readiness: KafkaLogStack) ----------------
    def prepare_options(self, options: StackOptions) -> StackOptions:
        session_ms = max(clients.SESSION_TIMEOUT_MS, self.admin.broker_min_session_ms())  # the broker refuses less
        return options if options.session_timeout_ms else replace(options, session_timeout_ms=session_ms)

    def declare(self) -> None:
        topics = [t for w in self.workloads for t in topology.topics(w)]
        topology.declare(self.admin.client, list(dict.fromkeys(topics)), self.options.partitions)

    def expected_members(self) -> dict[str, tuple[str, int]]:
        """group -> (topic, members): ``concurrency`` per live worker, one retry consumer per live worker."""
        live = len(self.worker_pids())
        expected = {}
        for route in (r for w in self.workloads for r in topology.routes(w)):
            expected[route.group] = (route.source, live * self.options.concurrency)
            expected[route.retry_group] = (route.retry_topic, live)
        return expected

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        return ([KitObject("kafka", "topic", t) for t in topology.kit_topics(workloads)]
                + [KitObject("kafka", "group", g) for g in topology.kit_groups(workloads)])

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The groups and topics of ``workloads`` BY NAME (no workload shares one; never a foreign one sharing
        the prefix), waiting until they are gone; the throwaway replay groups only with every workload."""
        purged = Purged()
        every = set(workloads) == set(WORKLOADS)
        self.admin.delete_kit_objects(topology.kit_topics(workloads), topology.kit_groups(workloads),
                                      topology.REPLAY_GROUPS if every else None,
                                      topology.dead_letter_topics(workloads), purged)
        return purged

    # -- the broker's view -----------------------------------------------------------
    def new_reader(self):
        return clients.reader(self.settings)  # read_committed: a DLQ record counts once its transaction commits

    def dead_letter(self, route: topology.Route, record: Any) -> DeadLetter:
        """The adapter wrote the original bytes with headers service and reason."""
        return DeadLetter(service=header(record, "service") or route.service, payload=record.value(),
                          reason=header(record, "reason") or "")

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new group (``auto.offset.reset=earliest``) reads the entry topic's retained log: how many."""
        topic = topology.entry_topic(workload)
        group = f"{topology.REPLAY_GROUPS}{uuid.uuid4().hex[:8]}"
        record(self.settings, [KitObject("kafka", "group", group)])  # a shared broker: purge deletes it by name
        reader = clients.replayer(self.settings, group)
        try:
            reader.subscribe([topic])  # a real group member: replay is "a new group", not a special API
            return len(read_until(reader, topic, self.admin.partitions(topic), timeout))
        finally:
            reader.close()
