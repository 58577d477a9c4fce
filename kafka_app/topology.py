"""The Kafka topics and consumer groups of each workload, declared explicitly (auto-create is off).

    signup    qk.signup ------------------------------> group qk.signup
    video     qk.video.uploaded -> qk.video.transcode --(forward)--> qk.video.transcoded
              qk.video.transcoded -> qk.video.thumbnail --(forward)--> qk.video.thumbnailed
              qk.video.thumbnailed -> qk.video.notify
    tracking  qk.tracking.events -> group qk.tracking.analytics
                                 -> group qk.tracking.recommendations   (fan-out: a group per service)

Per service: a retry topic ``qk.<service>.retry`` consumed by its own group
``qk.<service>.retry``, and a dead-letter topic ``qk.<service>.dlq`` that only
the consumers write. Every topic has ``options.partitions`` partitions; the
record key is ``envelope.body.partition_key`` (the user), so one user's
records share a partition and keep their order.
"""
from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from queuekit.core.config import kafka_prefix
from queuekit.core.routes import LogRoute
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

# Every topic and group name starts with this: "qk." on the kit's own Kafka, "qk-<install id>." on an
# external one (this install's namespace), QUEUEKIT_KAFKA_PREFIX when set; the stack and its workers
# compute the same one. Reset touches only the names below, and on an external broker only recorded ones.
PREFIX = kafka_prefix()
REPLAY_GROUPS = f"{PREFIX}replay."  # the throwaway groups of Stack.replay()
READER_GROUP = f"{PREFIX}reader"  # assign() only: never joins, never commits


class Route(LogRoute):
    """Where one service reads (``source``: the topic of the event it consumes), forwards (``sink``),
    retries and dead-letters."""

    prefix = PREFIX

    @property
    def group(self) -> str:
        return f"{PREFIX}{self.service}"

    @property
    def retry_topic(self) -> str:
        return f"{PREFIX}{self.service}.retry"

    @property
    def retry_group(self) -> str:
        return f"{PREFIX}{self.service}.retry"

    @property
    def dlq_topic(self) -> str:
        return f"{PREFIX}{self.service}.dlq"

    def transactional_id(self, worker: str, slot: int | str) -> str:
        """Stable per (service, worker name, consumer slot): the same worker index restarted fences its
        predecessor. Not per partition: a partition's new owner does not fence the old one (KIP-447
        fences by group generation instead)."""
        return f"{PREFIX}{self.service}.{worker}.{slot}"


# [topology:*] per service: its source topic and group, a retry topic with its own group, a DLQ topic
def routes(workload: str) -> list[Route]:
    return [Route(service) for service in WORKLOADS[workload].services]


def entry_topic(workload: str) -> str:
    return routes(workload)[0].source


def subscriptions(workload: str) -> list[tuple[str, str]]:
    """(group, topic) of every consumer group of the workload, retry groups included, DLQs not."""
    return [pair for r in routes(workload) for pair in ((r.group, r.source), (r.retry_group, r.retry_topic))]


def topics(workload: str) -> list[str]:
    names = [t for r in routes(workload) for t in (r.source, r.sink, r.retry_topic, r.dlq_topic) if t]
    return list(dict.fromkeys(names))


def kit_topics(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    """Every topic the kit creates for ``workloads``: what reset may delete, and nothing else."""
    return list(dict.fromkeys(t for w in workloads for t in topics(w)))


def kit_groups(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    """Every consumer group the kit's consumers of ``workloads`` join (replay groups aside: ``REPLAY_GROUPS``)."""
    return list(dict.fromkeys(g for w in workloads for g, _ in subscriptions(w)))


def dead_letter_topics(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    return [r.dlq_topic for w in workloads for r in routes(w)]


def declare(admin: AdminClient, names: list[str], partitions: int, timeout: float = 30.0) -> None:
    """Create the topics with the broker's default replication (1 on the single node, 3 on the cluster,
    where ``min.insync.replicas=2`` too); an existing one is kept as it is."""

    def create_missing() -> bool:
        existing = admin.list_topics(timeout=5).topics
        missing = [n for n in names if n not in existing]
        if missing:
            futures = admin.create_topics([NewTopic(n, partitions, -1) for n in missing], operation_timeout=10)
            for future in futures.values():
                try:
                    future.result()
                except KafkaException as exc:  # a topic still being deleted says so: try again
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
        metadata = admin.list_topics(timeout=5).topics
        return all(n in metadata and metadata[n].error is None and metadata[n].partitions for n in names)

    wait_for(create_missing, timeout=timeout, what=f"Kafka topics {', '.join(names)}")
