"""The Redis streams and consumer groups of each workload, under the stack's own key prefix.

``P`` is the install's prefix plus ``redis_streams:`` (``qk:redis_streams:`` on the kit's own Redis,
``qk:<install id>:redis_streams:`` on an external one): every key this stack makes starts with it.

    signup    P signup --------------------------------> group signup
    video     P video.uploaded -> group video.transcode --(forward)--> P video.transcoded
              P video.transcoded -> group video.thumbnail --(forward)--> P video.thumbnailed
              P video.thumbnailed -> group video.notify
    tracking  P tracking.events -> group tracking.analytics
                                -> group tracking.recommendations   (fan-out: a group per service)

Per service a dead-letter stream ``P <service>.dlq`` that only the consumers write (per service, not
per stream: the two tracking groups read one stream and each keeps its own dead letters). Group names
need no prefix: a group lives inside its stream's key. One stream per event, no sharding by key: a
group's consumers take entries in turn, so one user's entries are not kept in order.

An entry is one field ``envelope`` holding the envelope's JSON bytes (``FIELD``).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from queuekit.core.config import Settings
from queuekit.core.routes import LogRoute
from workloads import WORKLOADS

NAMESPACE = "redis_streams"  # the stack's name: its keys are <install prefix>redis_streams:…
FIELD = b"envelope"  # the one field of an entry the consumers read
# XADD ... MAXLEN ~ MAXLEN: a stream keeps about this many entries; older ones are trimmed whether or not
# every group has read them (Redis trims by length, not by consumption). 100,000 is 10x the largest backlog
# the scenarios and the bench build (10,000): trimming there would be loss by design (docs/redis.md).
MAXLEN = 100_000


def prefix_of(settings: Settings) -> str:
    """The stack's key prefix; ``queuekit.stacks.redis.RedisParts(settings, NAMESPACE).prefix`` is the same."""
    return f"{settings.redis_prefix}{NAMESPACE}:"


@dataclass(frozen=True)
class StreamRoute(LogRoute):
    """Where one service reads (``source``: the stream of the event it consumes), forwards (``sink``)
    and dead-letters (``dlq_topic``); ``group`` is its consumer group on ``source``. ``LogRoute``'s rule
    for ``source`` and ``sink``, with the prefix a field: it is the install's, known only at run time."""

    prefix: str  # type: ignore[misc]  # LogRoute's class-wide prefix, per instance here (not a constant)

    @property
    def group(self) -> str:
        return self.service

    @property
    def dlq_topic(self) -> str:
        return f"{self.prefix}{self.service}.dlq"


class Topology:
    """The routes of every workload under one prefix (``queuekit.stacks.log.LogTopology``)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def Route(self, service: str) -> StreamRoute:  # noqa: N802 - the LogTopology protocol's name
        return StreamRoute(service, self.prefix)

    # [topology:*] per service: its source stream and group, a dead-letter stream; one stream per event
    def routes(self, workload: str) -> list[StreamRoute]:
        return [StreamRoute(service, self.prefix) for service in WORKLOADS[workload].services]

    def entry_topic(self, workload: str) -> str:
        return self.routes(workload)[0].source

    def subscriptions(self, workload: str) -> list[tuple[str, str]]:
        """(group, stream) of every consumer group of the workload."""
        return [(r.group, r.source) for r in self.routes(workload)]

    def streams(self, workload: str) -> list[str]:
        names = [s for r in self.routes(workload) for s in (r.source, r.sink, r.dlq_topic) if s]
        return list(dict.fromkeys(names))

    def kit_streams(self, workloads: Iterable[str] = WORKLOADS) -> list[str]:
        """Every stream the stack makes for ``workloads``: what purge deletes, and nothing else."""
        return list(dict.fromkeys(s for w in workloads for s in self.streams(w)))

    def dead_letter_streams(self, workloads: Iterable[str] = WORKLOADS) -> list[str]:
        return [r.dlq_topic for w in workloads for r in self.routes(w)]


def declare(client, routes: list[StreamRoute]) -> None:
    """Each service's group on its source stream, from the stream's first entry (id 0: what was appended
    before the group existed is read too); MKSTREAM creates the stream. An existing group is kept as it is."""
    import redis

    for route in routes:
        try:
            client.xgroup_create(route.source, route.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
