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
* ``partitions``: Kafka only, ignored.

``publish`` counts envelopes: tracking sends one message per subscriber actor (no
native fan-out); an envelope is confirmed only when every copy was.
"""
from __future__ import annotations

import time
from typing import Sequence

import pika.exceptions
from dramatiq import Message
from dramatiq.errors import ConnectionClosed, DecodeError

from queuekit.core.envelope import Envelope, encode
from queuekit.stacks.rabbitmq import Management
from queuekit.core.options import StackOptions
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.pool import WorkerPool

from . import actors, topology
from .broker import QueuekitBroker, make_broker


class DramatiqStack(Stack):
    name = "dramatiq"
    broker = "rabbitmq"
    native_fanout = False  # the producer sends one message per subscriber actor
    native_dead_letter = True  # failed messages go to Dramatiq's .XQ (we only add the reason, see broker.py)
    replayable = False  # an acked message is gone from RabbitMQ

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self.mgmt = Management(settings)
        self.options = StackOptions()
        self.pool: WorkerPool | None = None
        self.workloads: list[str] = []
        self._producer: QueuekitBroker | None = None

    @property
    def producer(self) -> QueuekitBroker:
        if self._producer is None:  # publish may come before start (a backlog before any worker)
            self._producer = make_broker(self.options, self.settings, name="dramatiq-producer")
        return self._producer

    def start(self, workloads: Sequence[str], options: StackOptions = StackOptions()) -> None:
        self._close_producer()
        self.options, self.workloads = options, list(workloads)
        for workload in workloads:  # declare before any publish, with this run's queue arguments
            for service in topology.entry_services(workload):
                self.producer.declare_queue(topology.queue_name(service), ensure=True)
        self.pool = self.new_pool(options)
        for index in range(options.workers):
            self._spawn_worker(index)
        self._wait_workers_ready()

    def _spawn_worker(self, index: int) -> None:
        self.pool.spawn(self.pool.python("dramatiq_app.worker", *self.workloads), index)

    def _wait_workers_ready(self) -> None:
        """Every live worker consumes each queue; a killed worker (kill_worker) is not waited for."""
        queues, live = [q for w in self.workloads for q in topology.consumed_queues(w)], len(self.pool.pids())
        self.pool.wait_ready(lambda: self._consumers(queues) >= live, timeout=60,
                             what=f"{live} Dramatiq consumer(s) on each of {queues}")

    def _consumers(self, queues: list[str]) -> int:
        """Fewest consumers on any of ``queues``, read over AMQP (the management API lags by seconds)."""
        try:
            return min(self.producer.channel.queue_declare(q, passive=True).method.consumer_count for q in queues)
        except pika.exceptions.AMQPError:  # 404 (no worker declared it yet) closes the channel; or a dead link
            del self.producer.connection
            return 0

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        self._close_producer()

    def _close_producer(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        t0, confirmed, refused, copies = time.monotonic(), 0, 0, 1
        for env in envelopes:
            messages = actors.entry_messages(workload, encode(env))
            copies = len(messages)  # tracking: one per subscriber actor, Dramatiq has no fan-out
            if self._send(messages):
                confirmed += 1
            else:
                refused += 1
        return PublishReport(confirmed=confirmed, refused=refused, seconds=time.monotonic() - t0, copies=copies)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        """The bytes as the actor argument of a well-formed Dramatiq message (the actor rejects them)."""
        if not self._send(actors.entry_messages(workload, payload)):
            raise RuntimeError(f"RabbitMQ refused the raw message for {workload} (queue full)")

    def _send(self, messages: list[Message]) -> bool:
        """Enqueue each (each waits for its publisher confirm); False if RabbitMQ refused one."""
        for message in messages:
            try:
                self.producer.enqueue(message)
            except ConnectionClosed as exc:
                if isinstance(exc.message, pika.exceptions.NackError):  # x-overflow=reject-publish: queue full
                    return False
                raise
        return True

    def kill_worker(self, index: int) -> int:
        return self.pool.kill(index)

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
            dead += [_dead_letter(service, body, headers) for body, headers in self.mgmt.peek(xq)]
        return dead

    def in_flight(self) -> dict[str, int]:
        """Per worker process: deliveries it holds unacked, over all its consumer channels (management
        API view, seconds behind). A worker consuming several queues may hold ``prefetch`` per queue."""
        names = {c["name"]: c.get("user_provided_name") for c in self._mgmt_rows("/connections", "name,user_provided_name")}
        held: dict[str, int] = {}
        for ch in self._mgmt_rows("/channels", "connection_details,messages_unacknowledged,consumer_count"):
            worker = names.get((ch.get("connection_details") or {}).get("name"))
            if ch.get("consumer_count") and worker and worker.startswith("dramatiq-") and worker != "dramatiq-producer":
                held[worker] = held.get(worker, 0) + (ch.get("messages_unacknowledged") or 0)
        return held

    def _mgmt_rows(self, path: str, columns: str) -> list[dict]:
        r = self.mgmt.http.get(path, params={"columns": columns})
        r.raise_for_status()
        return r.json()

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new Dramatiq consumer on the entry queue(s): how many messages it can still read.
        Acked messages are deleted from RabbitMQ, so only unconsumed ones count; none are acked here."""
        seen, deadline = 0, time.monotonic() + timeout
        for service in topology.entry_services(workload):
            consumer = self.producer.consume(topology.queue_name(service), prefetch=1000, timeout=500)
            try:
                while time.monotonic() < deadline and next(consumer) is not None:  # None: idle for 500 ms
                    seen += 1
            finally:
                consumer.close()  # unacked deliveries go back to the queue
        return seen

    def reset(self) -> None:
        self.mgmt.delete_queues(topology.PREFIX)  # every queue, .DQ and .XQ; no exchanges (default exchange only)
        self._close_producer()  # it remembers which queues it declared


def _dead_letter(service: str, body: bytes, headers: dict) -> DeadLetter:
    """A Dramatiq message in .XQ -> its actor argument (the original bytes) and the last line of its traceback."""
    try:
        message = Message.decode(body)
    except DecodeError:  # not a Dramatiq message at all: the consumer nacked it unread, RabbitMQ's DLX moved it
        death = (headers.get("x-death") or [{}])[0].get("reason", "?")
        return DeadLetter(service, body, f"not a Dramatiq message (x-death reason: {death})")
    lines = [line for line in (message.options.get("traceback") or "").splitlines() if line.strip()]
    reason = lines[-1] if lines else "no reason recorded"
    return DeadLetter(service, actors.from_arg(message.args[0]) if message.args else body, reason)
