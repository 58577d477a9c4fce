"""DramatiqStack: Dramatiq actors over RabbitMQ, behind the harness's Stack protocol.

Topology (``topology.py``): one queue per service ``dramatiq.<service>`` plus
Dramatiq's ``.DQ`` (delayed retries) and ``.XQ`` (dead letters). Workers:
``options.workers`` processes of ``python -m dramatiq_app.worker`` (one
``dramatiq.Worker`` each, no forked children). The producer is a separate
broker instance built per ``start`` with the same options, so both sides
declare the queues with the same arguments.

Options on this stack:

* ``workers``: worker processes; ``kill_worker(i)`` SIGKILLs the one holding the messages.
* ``concurrency``: ``worker_threads`` of each ``dramatiq.Worker`` (shared by all its queues).
* ``prefetch``: ``Worker.queue_prefetch`` -> ``basic_qos(prefetch_count)`` on each queue's consumer
  channel, in-progress messages included (Dramatiq's default is 2 x threads; 0 = AMQP no limit).
  Per queue: a worker consuming two queues may hold ``2 x prefetch``.
* ``guard``: passed to ``process()``.
* ``max_retries``, ``backoff_ms``: the Retries middleware (``max_retries``, ``min_backoff``);
  retry ``n`` (0-based) waits ``backoff_ms * 2**n * U[1, 2)`` (Dramatiq always jitters),
  routed through ``.DQ``; then the message fails to ``.XQ``. MalformedMessage and
  PermanentError are never retried (``throws``).
* ``early_ack``: NOT SUPPORTED, ignored. Dramatiq acks only after the actor and its
  middleware ran; there is no ack-on-receipt mode, and this stack does not fake one.
* ``queue_max_length``: ``x-max-length`` + ``x-overflow=reject-publish`` on the entry
  queues (signup, video.transcode, both tracking queues), added to Dramatiq's own declaration.
  RabbitMQ nacks a publish into a full queue; Dramatiq's ``enqueue`` takes that nack for a
  channel error and retries 6 times (reconnecting each time) before raising
  ``ConnectionClosed``: ``publish`` counts that envelope as refused.
* ``queue_type``: ``classic`` or ``quorum`` (``dramatiq_quorum`` sets it): x-queue-type and its
  arguments on Q, Q.DQ and Q.XQ, declared by ``broker.QueuekitBroker`` (see quorum.py).
* ``delivery_limit``: quorum only, ``x-delivery-limit`` on Q and Q.DQ.
* ``partitions``: Kafka only, ignored.

``publish`` counts envelopes: tracking sends one message per subscriber actor (no
native fan-out); an envelope is confirmed only when every copy was. ``publish_delayed``:
Dramatiq's ``delay`` (the message waits in ``.DQ``, held unacked by a worker until its eta).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

import pika.exceptions

from queuekit.core.envelope import Envelope, encode
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise, RetryTiming
from queuekit.stacks.manifest import KitObject
from queuekit.stacks.rabbitmq import Management
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import actors, topology
from .broker import QueuekitBroker, make_broker
from .dead_letters import dead_letter


class DramatiqStack(Stack):
    name = "dramatiq"
    # frames.MAX_FRAME_BYTES: the consumer's own frame limit, checked before the envelope's
    hostile_outcomes = {"2-mib": "dead: over the 1048576-byte limit"}
    worker_module = "dramatiq_app.worker"
    capabilities = Capabilities(
        broker="rabbitmq",
        native_fanout=False,  # Dramatiq has no fan-out: the producer sends one message per subscriber actor
        per_key_order=False,  # a work queue hands the next message to whichever worker is free
        replayable=False,  # an acked message is gone from RabbitMQ
        dead_letter="native",  # Dramatiq's Retries middleware moves failures to .XQ (we only add the reason)
        ack_on_receipt_possible=False,  # Dramatiq acks only after the actor ran: no at-most-once mode
        transactions=False,
        pull_based=False,  # basic.qos prefetch; a bounded queue nacks the publisher
        evicts_slow_consumer=False,  # consumer_timeout is 30 min here: a long task is just long
        delayed="framework",  # delay -> Q.DQ; a worker holds it unacked until its eta, then enqueues it to Q
        retry_delay="jittered",  # Retries middleware: min_backoff * 2**n * U[1, 2) (compute_backoff's jitter)
    )
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "dramatiq_app.raw_publisher:RawPublisher"  # Dramatiq messages over AMQP with pika
    observer = "dramatiq_app.observe"
    by_hand: ClassVar[str | None] = "dramatiq_app.by_hand"
    libraries = ("dramatiq", "pika")
    client_loggers: ClassVar[tuple[str, ...]] = ("pika", "dramatiq")
    cluster = ClusterPromise({}, "classic queue on one node: no replica; reconnecting is Dramatiq's (measured)")
    bare_twin: ClassVar[str | None] = "bare.dramatiq_worker:publish_backlog"
    retry_timing = RetryTiming(100, "start", (0.09, 0.5), (0.19, None))  # backoff * 2**n * U[1, 2), via the .DQ

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self.mgmt = Management(settings)
        self._producer: QueuekitBroker | None = None

    @property
    def producer(self) -> QueuekitBroker:
        if self._producer is None:  # publish may come before start (a backlog before any worker)
            self._producer = make_broker(self.options, self.settings, name="dramatiq-producer")
        return self._producer

    # -- the template's hooks ------------------------------------------------------
    def declare(self) -> None:
        for workload in self.workloads:  # declare before any publish, with this run's queue arguments
            for service in topology.entry_services(workload):
                self.producer.declare_queue(topology.queue_name(service), ensure=True)

    def _consumed_queues(self) -> list[str]:
        return [q for w in self.workloads for q in topology.consumed_queues(w)]

    def consumers_ready(self) -> bool:
        """Every live worker consumes each queue; read over AMQP (the management API lags by seconds)."""
        try:
            fewest = min(self.producer.channel.queue_declare(q, passive=True).method.consumer_count
                         for q in self._consumed_queues())
        except pika.exceptions.AMQPError:  # 404 (no worker declared it yet) closes the channel; or a dead link
            del self.producer.connection
            return False
        return fewest >= len(self.worker_pids())

    def describe_consumers(self) -> str:
        return f"consumers per queue: {self.mgmt.consumer_counts(topology.PREFIX)}"

    def close_clients(self) -> None:
        if self._producer is not None:
            self._producer.close()  # it remembers which queues it declared: a new run declares again
            self._producer = None

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        work, dead = topology.kit_queues(workloads)
        return [KitObject("rabbitmq", "queue", q) for q in work + dead]

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        # the queues of these workloads BY NAME (topology.kit_queues; no queue is shared between workloads),
        # dead letters counted in what reset reports
        purged = Purged()
        work, dead = topology.kit_queues(workloads)
        self.mgmt.delete_kit_queues(work + dead, dead, purged)
        return purged

    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        return self._send(workload, envelopes)

    def publish_delayed(self, workload: str, envelopes: Sequence[Envelope], delay_s: float) -> PublishReport:
        """Dramatiq's ``send_with_options(delay=…)``: the message goes to ``Q.DQ`` with an ``eta``; a worker's
        delay-queue consumer takes it at once and keeps it unacked in memory until the eta, then enqueues it
        to ``Q`` and acks it (dramatiq/worker.py ``handle_delayed_messages``): framework-held."""
        return self._send(workload, envelopes, delay_ms=round(delay_s * 1000))

    def _send(self, workload: str, envelopes: Sequence[Envelope], delay_ms: int | None = None) -> PublishReport:
        t0, confirmed, refused, sent = time.monotonic(), 0, 0, 0
        for env in envelopes:
            messages = actors.entry_messages(workload, encode(env))  # tracking: one per subscriber actor
            ok = self.producer.enqueue_confirmed(messages, delay_ms)  # each waits for its publisher confirm
            confirmed, refused, sent = confirmed + ok, refused + (not ok), sent + len(messages) * ok
        return PublishReport(confirmed=confirmed, refused=refused, seconds=time.monotonic() - t0, broker_messages=sent)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        """The bytes as the actor argument of a well-formed Dramatiq message (the actor rejects them)."""
        if not self.producer.enqueue_confirmed(actors.entry_messages(workload, payload)):
            raise RuntimeError(f"RabbitMQ refused the raw message for {workload} (queue full)")

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        """Work and delay queues empty, read from a management snapshot newer than this call. Every
        follow-up message (retry into .DQ, next pipeline step) is confirmed before its predecessor
        is acked, so a fresh zero means done."""
        self.mgmt.wait_settled(topology.work_queues(workload), timeout)

    def backlog(self, workload: str) -> int:
        return self.mgmt.backlog(topology.work_queues(workload))

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        dead = []
        for xq in topology.dead_letter_queues(workload):
            service = xq[len(topology.PREFIX):-len(".XQ")]
            dead += [dead_letter(service, body, headers) for body, headers in self.mgmt.peek(xq)]
        return dead

    def in_flight(self) -> dict[str, int]:
        """Per worker process: deliveries it holds unacked, over all its consumer channels (management
        API view, seconds behind). A worker consuming several queues may hold ``prefetch`` per queue."""
        return self.mgmt.unacked_per_named_connection("dramatiq-", exclude="dramatiq-producer")

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new Dramatiq consumer on the entry queue(s): how many messages it can still read.
        Acked messages are deleted from RabbitMQ, so only unconsumed ones count; none are acked here."""
        deadline = time.monotonic() + timeout
        return sum(self.producer.count_readable(topology.queue_name(s), deadline) for s in topology.entry_services(workload))

    def fault_target(self, service: str) -> str:
        """The queue ``service``'s actor consumes: the cluster scenarios hurt its leader / home node."""
        return topology.queue_name(service)
