"""DramatiqRedisStack: the same Dramatiq actors and worker on Dramatiq's RedisBroker.

One setting changes (``options.transport = "redis"``: ``redis_broker.make_redis_broker`` instead of
RabbitMQ); actors.py, topology.py, frames.py and worker.py are dramatiq_app's own. Queue names stay
``dramatiq.<service>``; on Redis they live under the stack's prefix (``redis_view.py`` has the key
layout): ``qk:dramatiq_redis:dramatiq.signup``, ``….msgs``, ``….DQ``, ``….XQ``, ack sets and heartbeats.
Nothing outside the prefix is made or deleted (purge: ``RedisParts``, by name, never FLUSHDB).

What each option does here (beside ``DramatiqStack``'s list):

* ``prefetch``: ids one consumer LPOPs into its worker's ack set ahead, in-progress ones included
  (0 would fetch nothing: there is no "no limit").
* ``early_ack``: NOT SUPPORTED, ignored (Dramatiq acks after the actor, on every broker).
* ``queue_max_length``: ignored: a Redis list has no bound, nothing refuses the producer.
* ``queue_type``, ``delivery_limit``, ``partitions``: ignored.

Acks and leases: a fetched message stays in its worker's ack set until the actor ran. A worker
whose heartbeat is older than ``HEARTBEAT_TIMEOUT_MS`` (10 s) is dead: maintenance pushes its ack sets
back to their queues. A live worker keeps its messages however long its actor runs (lease "none").

* Supports Fanout: No (the producer sends one message per subscriber actor, as on RabbitMQ)
* Supports per-key order: No
* Supports replay: No (an ack deletes the message's data)
* Supports delayed delivery: Yes, the framework's (``Q.DQ`` + an eta the worker waits for)
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from queuekit.core.envelope import Envelope, encode
from queuekit.core.options import StackOptions
from queuekit.core.redis_keys import glob_escape
from queuekit.core.waiting import wait_for
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise
from queuekit.stacks.manifest import KitObject
from queuekit.stacks.redis import RedisParts
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import actors, frames, topology
from .redis_broker import NAMESPACE, PRODUCER, KitRedisBroker, make_redis_broker, namespace, reasons_key
from .redis_view import RedisView
from .stack import DramatiqStack

READY_HEARTBEAT_MS = 2000  # a worker whose consumers stamped a heartbeat this recently is consuming


class DramatiqRedisStack(DramatiqStack):
    name = NAMESPACE
    variant_of = "dramatiq"
    capabilities = Capabilities(
        broker="redis",
        native_fanout=False,  # Dramatiq has no fan-out: one message per subscriber actor
        per_key_order=False,  # one list per queue, the next id to whichever consumer fetches first
        replayable=False,  # an ack deletes the message's data (HDEL)
        dead_letter="native",  # Dramatiq's nack moves the message to Q.XQ (we add the reason beside it)
        ack_on_receipt_possible=False,  # Dramatiq acks only after the actor ran
        transactions=False,
        pull_based=True,  # consumers fetch with LPOP; an unbounded list never refuses the producer
        evicts_slow_consumer=False,
        lease="none",  # heartbeats are per worker process: a live worker keeps what it fetched
        # a delayed message waits in Q.DQ, but a worker fetches it at once and holds it until its eta (its ack
        # set): Redis keeps it, only the framework knows when it is due
        delayed="framework",
        retry_delay="jittered",  # Retries middleware: min_backoff * 2**n * U[1, 2) (compute_backoff's jitter)
    )
    raw_publisher = "dramatiq_app.raw_publisher:RedisRawPublisher"  # the message hash + queue list, as enqueue writes
    observer = "dramatiq_app.redis_observe"
    by_hand = None
    libraries = ("dramatiq", "redis")
    client_loggers = ("dramatiq",)  # "Consumer encountered a connection error" is Dramatiq's line
    cluster = ClusterPromise({}, "clients follow the primary through Sentinel (core/redis_client); replication is "
                             "asynchronous, so a failover may lose acknowledged enqueues: measured")
    bare_twin: ClassVar[str | None] = "bare.dramatiq_redis_worker:publish_backlog"

    def __init__(self, settings, ledger_path):
        Stack.__init__(self, settings, ledger_path)  # not DramatiqStack's: no RabbitMQ management client
        self.parts = RedisParts(settings, NAMESPACE)
        self._sender: KitRedisBroker | None = None

    def prepare_options(self, options: StackOptions) -> StackOptions:
        return replace(options, transport="redis")

    @property
    def sender(self) -> KitRedisBroker:
        if self._sender is None:
            self._sender = make_redis_broker(self.options, self.settings, name=PRODUCER)
        return self._sender

    @property
    def view(self) -> RedisView:
        return RedisView(self.parts.client, namespace(self.settings))

    # -- the template's hooks ------------------------------------------------------
    def declare(self) -> None:
        return None  # Redis has nothing to declare: enqueue makes the keys

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        return []  # the keyspace is the prefix's (RedisParts), not named objects in the manifest

    def consumers_ready(self) -> bool:
        live = {self.worker_name(i) for i in range(len(self._running().procs)) if self._running().alive(i)}
        return live <= self.view.live_workers(READY_HEARTBEAT_MS)

    def describe_consumers(self) -> str:
        live = sorted(self.view.live_workers(READY_HEARTBEAT_MS))
        return f"workers with a heartbeat in the last {READY_HEARTBEAT_MS} ms: {live}"

    def close_clients(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender.client.close()
            self._sender = None
        self.parts.close()

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The keys of ``workloads``' queues by name (``redis_view.py``'s layout: the list, the message hashes,
        .DQ, .XQ with the reasons, the ack sets; dead letters counted); with every workload also every other
        key under the stack's prefix (heartbeats). Never another's."""
        purged, ns = Purged(), self.view.ns
        queues = [q for w in workloads for q in topology.consumed_queues(w) if not q.endswith(".DQ")]
        purged.dead({f"{q}.XQ": self.view.dead_count([q]) for q in queues})
        names = [f"{ns}:{q}{suffix}" for q in queues
                 for suffix in ("", ".msgs", ".DQ", ".DQ.msgs", ".XQ", ".XQ.msgs")] + [reasons_key(ns, q) for q in queues]
        acks = {f"{q}.DQ" for q in queues} | set(queues)  # an ack set is <ns>:__acks__.<broker id>.<queue>
        found = self.parts.client.scan_iter(match=glob_escape(f"{ns}:__acks__.") + "*", count=1000)
        names += [key for key in (k.decode() if isinstance(k, bytes) else k for k in found)
                  if key.partition("@")[2].partition(".")[2] in acks]
        self.parts.delete(names, purged)
        if set(workloads) == set(WORKLOADS):
            purged.sweep(self.parts.prefix, self.parts.purge(sweep=True))
        return purged

    def _enqueue(self, workload: str, payload: bytes, delay_ms: int | None = None) -> int:
        messages = actors.entry_messages(workload, payload)  # tracking: one per subscriber actor
        for message in messages:
            # [semantics:ack-timing] one Lua call (HSET + RPUSH) on the primary: "confirmed" = the primary has it in
            # memory; AOF everysec writes it within a second, replicas get it asynchronously
            self.sender.enqueue(message, delay=delay_ms)
        return len(messages)

    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        t0, sent = time.monotonic(), 0
        for env in envelopes:
            sent += self._enqueue(workload, encode(env))
        return PublishReport(confirmed=len(envelopes), seconds=time.monotonic() - t0, broker_messages=sent)

    def publish_delayed(self, workload: str, envelopes: Sequence[Envelope], delay_s: float) -> PublishReport:
        """Dramatiq's ``send_with_options(delay=)``: into ``Q.DQ`` with an eta; a worker's delay consumer
        fetches it, holds it until the eta and moves it to ``Q`` (then acks it in ``Q.DQ``)."""
        t0, sent = time.monotonic(), 0
        for env in envelopes:
            sent += self._enqueue(workload, encode(env), delay_ms=int(delay_s * 1000))
        return PublishReport(confirmed=len(envelopes), seconds=time.monotonic() - t0, broker_messages=sent)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        """The bytes as the actor argument of a well-formed Dramatiq message (the actor rejects them)."""
        self._enqueue(workload, payload)

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        """Nothing ready, fetched or delayed. Retries and pipeline steps are enqueued before their
        predecessor is acked, so a zero means done."""
        queues = topology.work_queues(workload)
        wait_for(lambda: self.view.unsettled(queues) == 0, timeout=timeout, what=f"{workload}: nothing unsettled",
                 describe=lambda: f"unsettled {self.view.unsettled(queues)}, held {self.view.held()}")

    def backlog(self, workload: str) -> int:
        return self.view.unsettled(topology.work_queues(workload))

    def in_flight(self) -> dict[str, int]:
        """Per worker: ids in its ack sets (fetched, not acked); a dead worker's until maintenance requeues them."""
        return self.view.held()

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        dead = []
        for service in WORKLOADS[workload].services:
            for body, reason in self.view.dead(topology.queue_name(service)):
                last = [line for line in reason.splitlines() if line.strip()]
                why = last[-1] if last else frames.traceback_last_line(body) or "no reason recorded"
                dead.append(DeadLetter(service, frames.first_argument(body), why))
        return dead

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """What a brand-new consumer could still fetch: the ids waiting in the entry queues (acked ones are gone)."""
        return self.view.ready([topology.queue_name(s) for s in topology.entry_services(workload)])
