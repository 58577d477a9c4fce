"""``RabbitMQStreamStack``: RabbitMQ streams over the native stream protocol (rstream), behind the Stack protocol.

A stream is an append-only log inside RabbitMQ: reading does not remove, each
reader keeps an offset. Two shapes, by the node's version (``partitions.py``): on
RabbitMQ 3.10.8 plain streams, every reader reading everything (below); on
**>= 3.11** (the kit's 4.0 / 4.3 nodes) each entry stream is a **super stream** of
``partitions`` partition streams, routed by the message's key, and each service a
**single-active-consumer** group: one active reader per partition, the partitions
spread over the service's workers, offsets stored under the service's name
(``single_active.py``) — Kafka's consumer group on RabbitMQ. What this stack
supports, and how (3.10 unless said):

* Supports fan-out: Yes, native — one stream per event type, a reader (and
  an offset) per subscribing service; one append per event.
* Supports replay: Yes, native — a reader without a stored offset starts at
  the log's first message; nothing is deleted by consuming (no retention set).
* Supports competing consumers (a service's workers sharing its messages):
  **No.** Every subscriber receives every message; each worker of a service
  reads the whole stream with its own offset reference ``<service>@<worker>``.
  More workers = the same work again (the ledger's guard keeps one effect).
  Single active consumer and super streams (partitioned streams), the 3.11
  answers, are **unsupported on RabbitMQ 3.10.8**; this stack does not fake them.
  **>= 3.11: Yes**, by partition: one active member per partition and service,
  the others wait (parallelism <= partitions); a member that joins or leaves
  moves partitions (the broker rebalances; the leaver stores its offset first).
* Supports offset tracking: Yes, the broker's offset store (``store_offset``
  every 200 ms and on stop; ``query_offset`` on (re)connect) — see ``offsets.py``.
* Supports dead-lettering: No (streams have no DLX). The reader appends the
  original bytes with a reason to ``stream.<service>.dlq``, a stream too.
* Supports retries: No. The reader retries in place with doubling backoff
  (the messages behind wait: order kept, head-of-line blocking).
* Supports publisher confirms and deduplication: Yes — every append is
  confirmed; forwards and dead letters carry publishing id = input offset + 1
  under a per-service producer name, so the broker keeps one per input.
* Supports length limits that push back on producers: No (streams take
  ``x-max-length-bytes`` / ``x-max-age`` retention, which deletes old segments).
* Supports transactions: No.

Options, as this stack honours them:

- ``workers``: worker processes; each reads every stream of the workload in full (>= 3.11: the group's members).
- ``concurrency``: ignored; one reader per service per worker, one message at a time.
- ``prefetch``: ignored; credit-based flow, ``clients.INITIAL_CREDIT`` chunks ahead.
- ``guard``: passed to ``process()``.
- ``max_retries`` / ``backoff_ms``: in-place retries, ``backoff_ms * 2**(attempt-1)``, then the dead-letter stream.
- ``early_ack``: the offset is stored before handling (at-most-once for that reader).
- ``partitions``: 3.10: ignored (super streams need 3.11); >= 3.11: partitions per entry super stream.
- ``queue_max_length``: ignored (see above: no reject-publish on a stream).

Broker view: ``backlog`` is, over every live worker's reference of the
workload (>= 3.11: every partition and service), the stream's tail offset minus the stored offset (offsets,
not messages: on 3.10 each stored offset is itself an entry of the log);
``drain`` waits for it to be 0 on two reads in a row. ``in_flight`` is empty:
nothing is acknowledged per message.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from queuekit.core.envelope import Envelope, encode
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise
from queuekit.stacks.manifest import KitObject
from queuekit.stacks.pool import WorkerPool
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import partitions, readers, topology
from .admin import StreamAdmin
from .dead_letters import dead_letter

SPREAD_WAIT_S = 15.0  # >= 3.11: how long readiness waits for the broker to spread the partitions over members
SETTLE_READS = 2  # drain: zero lag on this many reads in a row (the tail watcher trails an append by milliseconds)


class RabbitMQStreamStack(Stack):
    name = "rabbitmq_stream"
    worker_module = "rabbitmq_stream_app.worker"
    raw_reference = "rabbitmq_stream"  # its latency beside raw rstream on the stream protocol, not raw pika
    capabilities = Capabilities(
        broker="rabbitmq",
        native_fanout=True,  # one stream, a reader with its own offset per service
        per_key_order=True,  # every reader reads the whole stream in order, one message at a time
        replayable=True,  # consuming does not delete: a new reader starts at the first message
        dead_letter="adapter",  # no DLX for streams: the reader appends to stream.<service>.dlq
        ack_on_receipt_possible=True,  # store the offset before handling (early_ack): at-most-once
        transactions=False,
        pull_based=True,  # credit-based reads; a stream never refuses a producer, the lag grows
        evicts_slow_consumer=False,  # no liveness deadline: heartbeats continue while a handler runs in a thread
        work_sharing_beyond_partitions=False,  # no sharing at all: see competing_consumers
        competing_consumers=False,  # every subscriber gets every message (single active consumer needs 3.11)
    )
    # RabbitMQ >= 3.11 (partitions.SINCE): super streams + single active consumer, the stack's shape there
    # (partitions.py): a service's workers share its partitions, one active reader per partition.
    capabilities_since = {"3.11": {
        "competing_consumers": True,  # one active member per partition and service: each message to one worker
        "per_key_order": True,  # a key's partition is read by one member at a time, in order
        "work_sharing_beyond_partitions": False,  # the rest of the group waits: parallelism <= partitions
    }}
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "rabbitmq_stream_app.raw_publisher:RawPublisher"
    observer = "rabbitmq_stream_app.observe"
    libraries = ("rstream",)
    client_loggers = ("rstream",)
    cluster = ClusterPromise({}, "a replicated stream, but the stack's rstream clients know one host "
                             "(node 1, the stream's leader): measured")

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self._admin: StreamAdmin | None = None
        self._unspread_since: float | None = None  # consumers_ready: settled but unevenly placed since then

    @property
    def admin(self) -> StreamAdmin:
        if self._admin is None:
            self._admin = StreamAdmin(self.settings)
        return self._admin

    # -- the template's hooks ------------------------------------------------------
    @property
    def partitioned(self) -> bool:
        """Super streams + single active consumer: on a node >= 3.11 (the capabilities' version rule)."""
        return partitions.partitioned(self.settings)

    def make_pool(self) -> WorkerPool:
        pool = super().make_pool()
        pool.env[partitions.VERSION_ENV] = self.settings.rabbitmq_version  # the workers choose the same shape
        return pool

    def _partitions(self, workload: str) -> list[str]:
        return partitions.names(topology.entry_stream(workload), self.options.partitions) if self.partitioned else []

    def declare(self) -> None:
        if not self.partitioned:
            return self.admin.declare([s for w in self.workloads for s in topology.streams(w)])
        entries = {topology.entry_stream(w): self.options.partitions for w in self.workloads}
        self.admin.declare([s for w in self.workloads for s in topology.streams(w) if s not in entries], entries)

    def _live_workers(self) -> list[str]:
        pool = self.pool
        return [pool.name(i) for i in range(len(pool.procs)) if pool.alive(i)] if pool else []

    def _readers(self) -> set[readers.Reader]:
        """(stream, service, worker, active) the broker sees subscribed (stream management plugin)."""
        return {(c["queue"]["name"], str((c.get("properties") or {}).get("service")),
                 str((c.get("properties") or {}).get("worker")), bool(c.get("active", True)))
                for c in self.admin.consumers()}

    def consumers_ready(self) -> bool:
        """Every live worker subscribed as its plan says; >= 3.11: one active member per partition and service,
        and spread over the members (``readers.settled``) — or, after ``SPREAD_WAIT_S``, as the broker placed them:
        RabbitMQ picks a partition's active member by that partition's subscription order, so members that
        subscribed in different orders can stay unevenly placed (a finding, not a hand-over in progress)."""
        found, workers = self._readers(), self._live_workers()
        args = (workers, self.workloads, self.partitioned, self.options.partitions)
        if readers.settled(found, *args):
            self._unspread_since = None
            return True
        if not readers.settled(found, *args, spread=False):
            self._unspread_since = None
            return False
        self._unspread_since = self._unspread_since or time.monotonic()
        return time.monotonic() - self._unspread_since >= SPREAD_WAIT_S

    def describe_consumers(self) -> str:
        return f"stream readers (stream, service, worker): {sorted(self._readers(), key=str)}"

    def close_clients(self) -> None:
        if self._admin is not None:
            self._admin.close()  # the watcher, producer and offset reader; the loop thread stays for the next run

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        supers = [(w, topology.entry_stream(w)) for w in workloads] if self.partitioned else []
        return [KitObject("rabbitmq", "queue", s) for s in topology.kit_streams(workloads)] + [
            o for w, e in supers for o in (KitObject("rabbitmq", "exchange", e),
                                           *(KitObject("rabbitmq", "queue", p) for p in self._partitions(w)))]

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The streams of ``workloads`` BY NAME (no stream is shared between workloads), with the offsets and
        producer sequences stored in them (never a foreign ``stream.*`` one); dead-letter entries counted.
        >= 3.11: their entry super streams too (the broker deletes the exchange and every partition it lists)."""
        purged = Purged()
        if self.partitioned:
            self.admin.delete_super_streams(list(dict.fromkeys(topology.entry_stream(w) for w in workloads)), purged)
        every = topology.kit_streams(workloads)
        self.admin.delete(every, [s for s in every if s.endswith(".dlq")], purged)
        return purged

    # -- producing -----------------------------------------------------------------
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        t0 = time.monotonic()
        confirmed, refused = self.admin.publish(topology.entry_stream(workload), [encode(e) for e in envelopes],
                                                keys=[e.body.partition_key for e in envelopes],
                                                partitioned=self._partitions(workload))
        return PublishReport(confirmed=confirmed, refused=refused, seconds=time.monotonic() - t0,
                             broker_messages=confirmed)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        stream = topology.raw_target(workload, self.partitioned)  # no key to route by: the first partition
        confirmed, _ = self.admin.publish(stream, [payload])
        if not confirmed:
            raise KitError(f"RabbitMQ did not confirm the raw message on {stream}")

    # -- the broker's view -----------------------------------------------------------
    def lag(self, workload: str) -> dict[str, int]:
        """Per offset reference of the live workers' subscriptions: the stream's tail offset minus its stored
        offset (``readers.lags``)."""
        return readers.lags(self.admin, workload, self._live_workers(), self.partitioned, self.options.partitions)

    def backlog(self, workload: str) -> int:
        return sum(self.lag(workload).values())

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        zeros: list[bool] = []

        def settled() -> bool:
            zeros.append(self.backlog(workload) == 0)
            return len(zeros) >= SETTLE_READS and all(zeros[-SETTLE_READS:])

        wait_for(settled, timeout=timeout, interval=0.25, max_interval=0.25,
                 what=f"every live {workload} reader's stored offset at its stream's tail",
                 describe=lambda: f"lag per reader: {self.lag(workload)}, tails: {self.admin.tails}")

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """Every entry of the workload's dead-letter streams, read by a reader that stores no offset."""
        return [dead_letter(route.service, msg) for route in topology.routes(workload)
                for _, msg in self.admin.read(route.dlq)]

    def in_flight(self) -> dict[str, int]:
        """Nothing is acknowledged per message on a stream: progress is the stored offset (see ``lag``)."""
        return {}

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new reader (no reference) reads the entry stream from its first message: how many."""
        return sum(len(self.admin.read(s, timeout=timeout))
                   for s in self._partitions(workload) or [topology.entry_stream(workload)])

    def fault_target(self, service: str) -> str:
        """The stream ``service`` reads (>= 3.11, an entry super stream: its first partition): the cluster
        scenarios hurt its leader."""
        return topology.fault_target(service, self.partitioned)
