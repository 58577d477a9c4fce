"""``RedisStreamsStack``: plain redis-py consumer groups on Redis Streams, behind the Stack protocol.

Redis's answer to Kafka consumer groups (Redis 7.0, Debian 12's). What it supports, and how:

* Supports fan-out: Yes, native — one stream per event, one consumer group per service on it.
* Supports competing consumers beyond partitions: Yes — a group's consumers take entries in
  turn (XREADGROUP ``>``), however many; there are no partitions.
* Supports per-key order: No — one stream per event, not sharded by key: with several consumers
  one user's entries are handled in whatever order the consumers finish them.
* Supports replay: Yes, native — consuming does not delete; a new group from id 0 reads the
  stream through (``replay``), XRANGE reads it without any group.
* Supports dead-lettering: adapter — a consumer copies the entry to ``<service>.dlq`` (a stream)
  with its reason and XACKs it, in one MULTI/EXEC; read back with XRANGE.
* Supports a delivery limit: adapter-enforced on the broker's count — an entry claimed after
  ``max_retries + 1`` deliveries (XPENDING's delivery count) is dead-lettered (``claims.py``).
* Lease: per entry — XAUTOCLAIM hands an entry idle for ``min_idle_ms`` to another consumer, even
  while its first holder still runs it (no renewal). SIGKILL: held entries stay pending until claimed.
* Supports transactions: No (MULTI/EXEC makes one entry's outputs and its XACK atomic; there is no
  consume-transform-produce transaction, no option for it).
* Supports delayed delivery: No (no such thing in Redis Streams; ``publish_delayed`` is not offered).
* Supports length limits that push back on producers: No — ``XADD MAXLEN ~ 100000`` trims the
  oldest entries, read or not (``topology.MAXLEN``): a backlog beyond that is lost by design.

Options, as this stack honours them:

- ``workers`` / ``concurrency``: processes x consumer threads; each thread is a consumer of every group.
- ``prefetch``: XREADGROUP COUNT: entries one read hands a consumer (pending under its name until acked).
- ``guard``: passed to ``process()``.
- ``max_retries`` / ``backoff_ms``: in-place retries after ``backoff_ms * 2**(attempt-1)``, then the DLQ;
  ``max_retries + 1`` is also the delivery limit of claimed entries.
- ``early_ack``: XREADGROUP NOACK: acknowledged on delivery, at-most-once.
- ``record_lock_ms``: the lease, XAUTOCLAIM's min-idle time (default ``claims.CLAIM_IDLE_MS``, 10 s).
- ``partitions``, ``queue_max_length``, ``session_timeout_ms``, ``max_poll_interval_ms``: ignored.

Keys (all under ``<install prefix>redis_streams:``, recorded and deleted by name: ``queuekit.stacks.redis``):
a stream per event (``signup``, ``video.uploaded``, …), a dead-letter stream per service (``<service>.dlq``);
groups and consumers live inside their stream. Broker view: ``backlog`` is, per group, XINFO GROUPS ``lag``
(never delivered) plus ``pending`` (delivered, not acknowledged); ``in_flight`` is XPENDING per consumer.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuekit.stacks.base import DeadLetter
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise, RetryTiming
from queuekit.stacks.log import LogStack
from queuekit.stacks.redis import RedisParts
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from .admin import StreamAdmin, text
from .topology import NAMESPACE, StreamRoute, Topology, declare


class RedisStreamsStack(LogStack):
    name = "redis_streams"
    worker_module = "redis_streams_app.worker"
    capabilities = Capabilities(
        broker="redis",
        native_fanout=True,  # a consumer group per service on one stream
        per_key_order=False,  # one stream, not sharded: a group's consumers finish a user's entries in any order
        replayable=True,  # consuming does not delete: a new group from id 0 reads the stream again
        dead_letter="adapter",  # the consumer copies the entry to <service>.dlq and acks it
        ack_on_receipt_possible=True,  # early_ack: XREADGROUP NOACK
        transactions=False,  # MULTI/EXEC covers one entry's outputs + XACK; no consume-transform-produce option
        pull_based=True,  # consumers read; XADD never refuses a producer, the lag grows
        evicts_slow_consumer=False,  # no member eviction: a slow consumer keeps its place (its entries may be claimed)
        work_sharing_beyond_partitions=True,  # no partitions: every consumer of a group gets entries
        delivery_limit=True,  # Redis counts deliveries (XPENDING); the adapter dead-letters past max_retries + 1
        lease="record",  # XAUTOCLAIM takes one entry idle for min_idle_ms, its holder alive or not
    )
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "redis_streams_app.raw_publisher:RawPublisher"
    observer = "redis_streams_app.observe"
    libraries = ("redis",)
    cluster = ClusterPromise({}, "clients through Sentinel; asynchronous replication: an XADD confirmed by the "
                                 "old primary and not yet on a replica is lost at failover: measured")
    bare_twin = "bare.redis_streams_worker:publish_backlog"
    retry_timing = RetryTiming(200, "finish", (0.2, None), (0.4, None))  # in place, after the failed attempt

    topology: Topology
    admin: StreamAdmin

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self.parts = RedisParts(settings, NAMESPACE)
        self.topology = Topology(self.parts.prefix)
        self.admin = StreamAdmin(lambda: self.parts.client)
        self.publisher = self.admin

    # -- the template's hooks (publish, lag, backlog, drain: LogStack) ---------------------------------
    def declare(self) -> None:
        """Record every stream name (so purge finds it by name), then each service's group from id 0."""
        self.parts.keys.record(*self.topology.kit_streams())
        declare(self.parts.client, [r for w in self.workloads for r in self.topology.routes(w)])

    def consumer_names(self) -> set[str]:
        """The consumers the live workers run: ``<worker>.<service>.<slot>``."""
        pool = self.pool
        live = [pool.name(i) for i in range(len(pool.procs)) if pool.alive(i)] if pool else []
        return {f"{w}.{r.service}.{s}" for w in live for wl in self.workloads for r in self.topology.routes(wl)
                for s in range(self.options.concurrency)}

    def _seen(self) -> set[str]:
        """Consumers each group knows (a consumer appears at its first XREADGROUP; a dead one stays listed)."""
        return {text(c["name"]) for wl in self.workloads for r in self.topology.routes(wl)
                for c in self.admin.consumers(r.source, r.group)}

    def consumers_ready(self) -> bool:
        return self.consumer_names() <= self._seen()

    def describe_consumers(self) -> str:
        return f"consumers not yet reading: {sorted(self.consumer_names() - self._seen())}"

    def close_clients(self) -> None:
        self.parts.close()

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The streams of ``workloads`` BY NAME (their groups go with them; no stream serves two workloads;
        dead-letter entries counted); with every workload also any other key under the stack's prefix."""
        purged, client = Purged(), self.parts.client
        purged.dead({s: client.xlen(s) for s in self.topology.dead_letter_streams(workloads)})
        self.parts.delete(self.topology.kit_streams(workloads), purged, kind="stream")
        if set(workloads) == set(WORKLOADS):
            purged.sweep(self.parts.prefix, self.parts.purge())
        return purged

    # -- the broker's view -----------------------------------------------------------
    def in_flight(self) -> dict[str, int]:
        """XPENDING per consumer: entries delivered to it and not yet acknowledged (its prefetch and the one in hand)."""
        found: dict[str, int] = {}
        for route in (r for wl in self.workloads for r in self.topology.routes(wl)):
            for consumer, n in self.admin.pending_per_consumer(route.source, route.group).items():
                found[f"{route.group}/{consumer}"] = n
        return found

    def read_log(self, topic: str) -> list[Any]:
        return self.admin.read(topic)

    def dead_letter(self, route: StreamRoute, record: Any) -> DeadLetter:
        """A dead-letter entry: the payload as it came, the reason and the service the consumer wrote."""
        _, fields = record
        return DeadLetter(service=text(fields.get(b"service", route.service)), payload=fields.get(b"payload", b""),
                          reason=text(fields.get(b"reason", b"")))

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new group from id 0 reads the entry stream's retained entries: how many."""
        return self.admin.replay(self.topology.entry_topic(workload), timeout)
