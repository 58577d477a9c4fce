"""CeleryKafkaStack: the same Celery app and tasks over Kafka (kombu's ``confluentkafka://`` transport).

"Can we keep Celery and just move to Kafka?" One setting changes
(``options.transport = "confluentkafka"``: broker URL and transport
options, ``celery_app/kafka.py``); tasks.py, topology.py and worker.py are
celery_app's own. Where the transport forces a difference, it shows in the
matrix as a finding, not as a fork of the code.

What each option does here (beside ``CeleryStack``'s list):

* ``prefetch`` x ``concurrency``: kombu's virtual QoS, the number of records Celery takes from
  ``poll()`` before one is acked. librdkafka fetches ahead regardless; an ack commits, per partition,
  up to the first record taken and not yet acked (the kit's QoS, kafka_transport.py; stock kombu
  commits the consumer's whole position, past prefetched records: see kafka.py).
* ``partitions``: partitions per topic (kombu's ``num_partitions``; its default is 1).
* ``queue_max_length``: ignored (no x-max-length on Kafka: the lag grows instead).
* ``queue_type``, ``delivery_limit``: RabbitMQ only, ignored.

The broker's view: topics ``celery.<service>`` and ``celery.<service>.dlq``, one group
``celery.<service>-consumer-group`` per topic; backlog = the group's lag; dead letters are
read from the ``.dlq`` topics by a reader that never commits.

* Supports Fanout: No (a publish to the fanout exchange returns and reaches no topic): the producer
  sends one task per subscriber queue instead
* Supports per-key order: No (records carry no key)
* Supports replay: Yes (a new group reads the retained topic)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from confluent_kafka.admin import NewTopic

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.base import DeadLetter
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise, RetryTiming
from queuekit.stacks.kafka import Admin
from queuekit.stacks.manifest import KitObject
from queuekit.stacks.reset import Purged, only
from workloads import WORKLOADS

from . import kafka, kafka_topics, topology
from .app import make_app
from .dead_letters import dead_letter
from .kafka_observe import group_of
from .producer import ProducerSideFanout  # no fanout exchange on this transport: a copy per subscriber
from .stack import CeleryStack


class CeleryKafkaStack(ProducerSideFanout, CeleryStack):
    name = "celery_kafka"
    hostile_outcomes = {
        # kombu base64-encodes the task message into its record (1.3 MB): the producer refuses it
        "near-1-mb": "refused",
        # no fanout on this transport, so no remote control: the raw publisher cannot revoke, and refuses
        "celery-revoked": "refused",
    }
    capabilities = Capabilities(
        broker="kafka",
        native_fanout=False,  # no fanout exchange on this transport: the tracking publish reaches nobody (finding)
        per_key_order=False,  # Celery produces without a key: records of one user spread over partitions
        replayable=True,  # the topic keeps what was consumed; a new group reads it again
        dead_letter="adapter",  # our tasks publish to celery.<service>.dlq; there is no broker DLX
        ack_on_receipt_possible=True,  # task_acks_late=False: the commit happens when the task starts
        transactions=False,
        pull_based=True,  # consumers poll; nothing refuses the producer
        # max.poll.interval.ms stays librdkafka's 300 s here, beyond any task of the suite. A longer task WOULD be
        # evicted: with its prefetch full, kombu does not call poll() until the task is acked (not measured).
        evicts_slow_consumer=False,
        work_sharing_beyond_partitions=False,  # one consumer group per topic
        # countdown/eta: the worker reads the record at once and holds the task unacked (its offset uncommitted:
        # the kit's ack commits only up to the first unacked record) until due
        delayed="framework",
        retry_delay="coarse",  # the worker gets the retried task when its poll cycle comes round, not at the countdown
    )
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "celery_app.raw_publisher:KafkaRawPublisher"  # the record kombu's transport writes
    observer = "celery_app.kafka_observe"  # its topics and groups, not celery_app.observe's RabbitMQ queues
    libraries = ("celery", "kombu", "confluent-kafka")
    client_loggers = ("celery_app.rdkafka",)  # celery_app.kafka routes librdkafka's log here
    # kombu keeps its Kafka producers after a cell; librdkafka delivers their lines when one is next used,
    # i.e. during the NEXT Kafka cell: kept in the clients log, never counted as that cell's outage
    late_client_loggers = ("celery_app.rdkafka",)
    variant_of = "celery"
    own_vhost = False
    bare_twin = None
    cluster = ClusterPromise({}, "kombu's confluentkafka transport: acks=all, but an ack commits the consumer's "
                             "whole position (the crash scenario's finding): measured")
    retry_timing = RetryTiming()
    # a finding: stock kombu's confluentkafka transport lost one message now and then without any worker
    # crashing (an ack committing past unacked records; a send whose delivery failed counted as sent): both
    # fixed in kafka_transport.py, docs/findings.md

    def __init__(self, settings: Settings, ledger_path: Path):
        super().__init__(settings, ledger_path)
        self.admin = Admin(settings)

    def prepare_options(self, options: StackOptions) -> StackOptions:
        return replace(options, transport=kafka.TRANSPORT)

    def _app(self):
        if self.app is None:
            self.app = make_app(self.options, broker_url=kafka.broker_url(self.settings))
        return self.app

    # -- the template's hooks -------------------------------------------------------------
    def _topics(self, workloads) -> list[str]:
        return kafka_topics.topics(workloads)

    def declare(self) -> None:
        """The topics with ``options.partitions`` partitions (kombu would create them with 1) and the broker's
        default replication (-1: 1 on the single node, 3 on the cluster)."""
        wanted = [t for t in self._topics(self.workloads) if t not in self.admin.topics()]
        if wanted:
            for future in self.admin.client.create_topics(
                    [NewTopic(t, num_partitions=self.options.partitions, replication_factor=-1) for t in wanted]).values():
                future.result()
        wait_for(lambda: all(t in self.admin.topics() for t in wanted), timeout=30, what=f"topics {wanted}")

    def _groups(self) -> dict[str, tuple[str, int]]:
        live = len(self.worker_pids())
        return {group_of(q): (q, live) for q in self._consumed_queues()}

    def consumers_ready(self) -> bool:
        return self.admin.groups_ready(self._groups())

    def describe_consumers(self) -> str:
        return self.admin.describe_groups(list(self._groups()))

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        return [KitObject("kafka", "topic", t) for t in self._topics(workloads)] + [
            KitObject("kafka", "group", g) for g in kafka_topics.kit_groups(workloads)]

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The topics and groups of ``workloads`` BY NAME (never a foreign celery.* one); the dead-letter
        reader's group and the throwaway replay groups only with every workload."""
        purged = Purged()
        every = set(workloads) == set(WORKLOADS)
        self.admin.delete_kit_objects(self._topics(workloads), only(workloads, kafka_topics.kit_groups),
                                      kafka_topics.REPLAY_GROUPS if every else None,
                                      [topology.dlq_name(s) for s in topology.services(workloads)], purged)
        return purged

    # -- the broker's view ------------------------------------------------------------------
    def _subscriptions(self, workload: str) -> list[tuple[str, str]]:
        return [(group_of(topology.queue_name(s)), topology.queue_name(s)) for s in WORKLOADS[workload].services]

    def backlog(self, workload: str) -> int:
        """The groups' lag: records not yet committed (a commit covers everything fetched before it)."""
        return sum(self.admin.lag(self._subscriptions(workload)).values())

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        subs = self._subscriptions(workload)
        wait_for(lambda: sum(self.admin.lag(subs).values()) == 0, timeout=timeout, what=f"{workload}: lag 0",
                 describe=lambda: f"lag {self.admin.lag(subs)}")

    def in_flight(self) -> dict[str, int]:
        return {}  # pull-based: the broker does not track deliveries per consumer

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """Each service's ``.dlq`` topic read from the beginning by a reader that never commits."""
        metadata = self.admin.topics()
        return [dead_letter(service, *kafka_topics.kombu_record(record.value()))
                for service in WORKLOADS[workload].services if (topic := topology.dlq_name(service)) in metadata
                for record in kafka_topics.read(self.settings, topic, list(metadata[topic].partitions))]

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new group on the entry topic, from the earliest offset: how many records it reads."""
        topic = topology.queue_name(topology.entry_services(workload)[0])
        return kafka_topics.replay(self.settings, topic, self.admin.partitions(topic), timeout)
