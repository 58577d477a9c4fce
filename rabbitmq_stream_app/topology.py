"""The streams of each workload and who reads them with which offset reference.

    signup    stream.signup ------------------------------> reader signup
    video     stream.video.uploaded -> video.transcode --(forward)--> stream.video.transcoded
              stream.video.transcoded -> video.thumbnail --(forward)--> stream.video.thumbnailed
              stream.video.thumbnailed -> video.notify
    tracking  stream.tracking.events -> reader tracking.analytics
                                     -> reader tracking.recommendations   (fan-out: an offset per reader)

Per service a dead-letter stream ``stream.<service>.dlq`` that only the
consumers write (streams have no dead-letter exchange). No retry stream: every
reader reads every message, so a retry stream would be retried by every reader
(see ``consumers.py``); retries happen in the reader, in order.

Offset references (the broker's offset store, one stored offset per
reference and stream): one per service *and worker*, ``<service>@<worker>``.
On RabbitMQ 3.10 every subscriber of a stream receives every message: there
is no way to share a stream's messages among a service's workers (single
active consumer, 3.11, would make one of them active; super streams, 3.11,
would partition). Two instances storing under one reference would overwrite
each other's position, so each keeps its own — a reader is a "group of one".
On RabbitMQ >= 3.11 the entry streams become super streams and every service a single-active-consumer
group with the reference ``<service>`` (``partitions.py``, ``single_active.py``).
"""
from __future__ import annotations

from collections.abc import Iterable

from queuekit.core.routes import LogRoute
from workloads import WORKLOADS

PREFIX = "stream."  # reset() deletes every stream with this prefix


class Route(LogRoute):
    """Where one service reads (``source``: the stream of the event it consumes), forwards (``sink``)
    and dead-letters."""

    prefix = PREFIX

    @property
    def dlq(self) -> str:
        return f"{PREFIX}{self.service}.dlq"

    def reference(self, worker: str) -> str:
        """The offset reference of this service's reader in ``worker`` (the broker stores one offset per reference)."""
        return f"{self.service}@{worker}"

    @property
    def producer_name(self) -> str:
        """Shared by the service's readers in every worker: the broker drops a message whose publishing id
        (the input's offset + 1) this name already wrote to that stream — one forward / dead letter per input,
        however many readers handled it (stream deduplication)."""
        return f"{PREFIX}{self.service}"


# [topology:*] per service: the stream it reads, its reader's offset reference, a dlq stream
def routes(workload: str) -> list[Route]:
    return [Route(service) for service in WORKLOADS[workload].services]


def entry_stream(workload: str) -> str:
    return routes(workload)[0].source


def raw_target(workload: str, partitioned: bool) -> str:
    """Where bytes with no key go: the entry stream; on >= 3.11 its super stream's first partition (a
    partition is a stream like any other: every reader of the service reads it)."""
    return f"{entry_stream(workload)}-0" if partitioned else entry_stream(workload)


def fault_target(service: str, partitioned: bool) -> str:
    """The stream ``service`` reads; an entry super stream's first partition on >= 3.11 (a fault hurts a queue)."""
    source = Route(service).source
    entries = {entry_stream(w): w for w in WORKLOADS}
    return raw_target(entries[source], partitioned) if source in entries else source


def streams(workload: str) -> list[str]:
    names = [s for r in routes(workload) for s in (r.source, r.sink, r.dlq) if s]
    return list(dict.fromkeys(names))


def kit_streams(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    """Every stream the kit may have declared for ``workloads`` (dead-letter streams included), BY NAME."""
    return list(dict.fromkeys(s for w in workloads for s in streams(w)))


def read_streams(workload: str) -> list[str]:
    """The streams the workload's readers consume (not the dead-letter ones)."""
    return list(dict.fromkeys(r.source for r in routes(workload)))
