"""The topics and share groups of each workload (auto-create is off: declared here).

    signup    qks.signup ------------------------------> share group qks.signup
    video     qks.video.uploaded -> qks.video.transcode --(forward)--> qks.video.transcoded -> …notify
    tracking  qks.tracking.events -> share group qks.tracking.analytics
                                  -> share group qks.tracking.recommendations   (fan-out: a group per service)

Per service: the share group's own dead-letter topic ``dlq.qks.<service>``
(KIP-1191: the broker writes it; its name must start with the broker's
``errors.deadletterqueue.topic.name.prefix``, "dlq.", and the topic must carry
``errors.deadletterqueue.group.enable=true``), and ``qks.<service>.dlq-reasons``
where the adapter notes WHY it rejected a record (a REJECT carries no reason).
No retry topic: a RELEASEd record goes back to the same share-partition.
``qks.`` rather than the Kafka stack's ``qk.``: each stack's purge deletes only its own.
"""
from __future__ import annotations

from queuekit.core.config import kafka_prefix
from queuekit.core.routes import LogRoute
from workloads import WORKLOADS

# Every topic and share group starts with this: "qks." on the kit's own Kafka, "qks-<install id>." on an
# external one, QUEUEKIT_KAFKA_SHARE_PREFIX when set (read by the stack and its workers alike).
PREFIX = kafka_prefix("QUEUEKIT_KAFKA_SHARE_PREFIX", "qks.")
REPLAY_GROUPS = f"{PREFIX}replay."  # the throwaway share groups of Stack.replay()
DLQ_PREFIX = "dlq." + PREFIX  # the broker's errors.deadletterqueue.topic.name.prefix ("dlq.") + ours


class Route(LogRoute):
    """Where one service reads (``source``: the topic of the event it consumes), forwards (``sink``)
    and dead-letters."""

    prefix = PREFIX

    @property
    def group(self) -> str:
        return f"{PREFIX}{self.service}"

    @property
    def dlq_topic(self) -> str:
        return f"{DLQ_PREFIX}{self.service}"

    @property
    def reasons_topic(self) -> str:
        return f"{PREFIX}{self.service}.dlq-reasons"


# [topology:*] per service: its source topic, a share group, the broker's dlq.* topic and the reasons topic
def routes(workload: str) -> list[Route]:
    return [Route(service) for service in WORKLOADS[workload].services]


def entry_topic(workload: str) -> str:
    return routes(workload)[0].source


def subscriptions(workload: str) -> list[tuple[str, str]]:
    """(share group, topic) of every service of the workload."""
    return [(r.group, r.source) for r in routes(workload)]


def topics(workload: str) -> list[str]:
    """Data topics (the DLQ topics are declared apart: they need a topic config)."""
    names = [t for r in routes(workload) for t in (r.source, r.sink, r.reasons_topic) if t]
    return list(dict.fromkeys(names))
