"""The Dramatiq broker: RabbitMQ with publisher confirms, explicit retries, JSON only.

``make_broker(options)`` builds one; importing this module builds the
process's global broker from the options the stack handed the worker
(``this_worker``) and sets it with ``dramatiq.set_broker`` before
``actors`` binds to it. The stack's producer builds its own with the same
options, so both declare the queues with the same arguments.

Three additions to Dramatiq's ``RabbitmqBroker``, all small overrides:

* every frame checked before the worker sees it (``frames.py``): what stock Dramatiq would
  drop, retry forever or die on goes to ``.XQ`` with a reason instead;

* queue arguments: Dramatiq's only queue-argument knob is ``max_priority``;
  anything else (``x-max-length``) needs ``_declare_queue`` overridden. Pre-
  declaring the queue ourselves with extra arguments does NOT work: Dramatiq
  re-declares it with its own arguments and RabbitMQ answers 406
  PRECONDITION_FAILED (inequivalent arg), which Dramatiq reports as a closed
  connection.
* a reason in the dead letter: stock ``nack`` is ``basic_nack(requeue=False)``
  and RabbitMQ dead-letters the frame *as delivered* into ``.XQ``: the
  exception that failed it exists only in the worker's log (a retried
  message carries the traceback of its *previous* attempt in
  ``options["traceback"]``, a message failed at once carries none). Here the
  failed message is published to ``.XQ`` with ``options["traceback"]`` set to
  the final exception, then acked.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from functools import partial

import dramatiq
import pika
import pika.exceptions
from dramatiq import Message
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker, _RabbitmqConsumer, _RabbitmqMessage
from dramatiq.common import q_name, xq_name
from dramatiq.errors import BrokerConnectionError, ConnectionClosed

from queuekit.core.config import Settings, settings
from queuekit.core.options import StackOptions
from queuekit.core.queue_types import dead_letter_queue_arguments, work_queue_arguments
from queuekit.core.worker_env import this_worker

from . import frames
from .middleware import kit_middleware
from .topology import extra_queue_arguments

log = logging.getLogger("dramatiq_app.broker")


class _DeadLetterWithReason(_RabbitmqConsumer):
    def __next__(self):
        """Dramatiq's own ``__next__`` (pika frame -> message), with every frame checked first
        (``frames.checked_message``): a bad one goes to ``.XQ`` with its reason and never reaches the
        worker. Stock Dramatiq nacks a frame it cannot decode (the DLX keeps it, without a reason)."""
        while True:
            try:
                method, properties, body = next(self.iterator)
                if method is None:
                    return None
            except (AssertionError, pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as e:
                if getattr(e, "reply_code", None) == 404:  # the queue is gone: redeclare on restart
                    self.broker.queues_pending.add(q_name(self.queue_name))
                raise ConnectionClosed(e) from None
            try:
                message, problem = frames.checked_message(body, self.queue_name, self.broker)  # parsed once
            except Exception as exc:  # noqa: BLE001 - the check must not take the consumer thread down
                problem = f"unreadable frame: {type(exc).__name__}: {str(exc)[:200]}"
            if problem is None:
                self.known_tags.add(method.delivery_tag)
                return _RabbitmqMessage(method.redelivered, method.delivery_tag, message)
            self._dead_letter_frame(method.delivery_tag, body, problem)

    def _dead_letter_frame(self, tag: int, body: bytes, reason: str) -> None:
        """The frame's bytes (truncated if huge) to ``.XQ`` with the reason, confirmed, then acked."""
        headers: dict[str, str | int] = {frames.REASON_HEADER: reason[:1000]}
        if len(body) > frames.MAX_FRAME_BYTES:
            headers["x-queuekit-truncated-from"] = len(body)
            body = body[:frames.TRUNCATED_BYTES]
        log.warning("dead-lettering a frame from %s: %s", self.queue_name, reason[:300])
        try:
            self.broker.channel.basic_publish(  # the broker's channel has publisher confirms on
                exchange="", routing_key=xq_name(self.queue_name), body=body, mandatory=True,
                properties=pika.BasicProperties(delivery_mode=2, headers=headers))
        except (pika.exceptions.AMQPError, BrokerConnectionError) as exc:
            log.error("dead letter not published (%r): nacking the frame to the DLX", exc)
            return self._nack(tag)  # the queue's DLX keeps it, without the reason
        self.connection.add_callback_threadsafe(partial(self.channel.basic_ack, tag))

    # [semantics:dead-letter] a failed message is published to .XQ with its traceback as the reason, confirmed, then
    # acked
    def nack(self, message) -> None:
        exc = message._exception  # stuffed by the worker thread; cleared only after post-processing
        why = "".join(traceback.format_exception(exc, limit=30)) if exc else message.options.get("traceback")
        dead = message.copy(queue_name=xq_name(message.queue_name),
                            options={"traceback": why or "failed by a middleware (e.g. AgeLimit)"})
        try:
            self.broker.enqueue(dead)  # confirmed by RabbitMQ before the delivery is acked
        except BrokerConnectionError:
            return super().nack(message)  # fall back to the native DLX copy (no reason, nothing lost)
        self.ack(message)


class QueuekitBroker(RabbitmqBroker):
    def __init__(self, *, queue_arguments: Mapping[str, dict], options: StackOptions, stock: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.queue_arguments = dict(queue_arguments)
        self.stock = stock  # options.stock_framework: Dramatiq's own consumer (the framework-drops scenario)
        # Quorum queues, the way a Dramatiq user gets them (Dramatiq 2.2 has no queue-type setting): the
        # type and its arguments on every queue Dramatiq declares, Q, Q.DQ and Q.XQ (both sides, producer
        # and worker, declare with the same options, so RabbitMQ never sees two different declarations).
        self.type_arguments = work_queue_arguments(options)
        self.dead_letter_arguments = dead_letter_queue_arguments(options)

    @property
    def consumer_class(self):
        return _RabbitmqConsumer if self.stock else _DeadLetterWithReason

    def _build_queue_arguments(self, queue_name):  # Q and Q.DQ: dead-letter to Q.XQ (+ quorum arguments)
        return {**super()._build_queue_arguments(queue_name), **self.type_arguments}

    def _declare_queue(self, queue_name):
        arguments = {**self._build_queue_arguments(queue_name), **self.queue_arguments.get(queue_name, {})}
        return self.channel.queue_declare(queue=queue_name, durable=True, arguments=arguments)

    def enqueue_confirmed(self, messages: list[Message], delay_ms: int | None = None) -> bool:
        """Enqueue each, each waiting for its publisher confirm; False if RabbitMQ refused one. A full queue
        (x-overflow=reject-publish) nacks the publish; Dramatiq takes the nack for a channel error, retries
        6 times (reconnecting each time) and raises ConnectionClosed wrapping the NackError. ``delay_ms``:
        Dramatiq's delay (an ``eta`` option, the message sent to ``Q.DQ``; a worker holds it until then)."""
        for message in messages:
            try:
                self.enqueue(message, delay=delay_ms)
            except ConnectionClosed as exc:
                if isinstance(exc.message, pika.exceptions.NackError):  # refused: counted by the caller, not retried
                    return False
                raise
        return True

    def count_readable(self, queue_name: str, deadline: float) -> int:
        """What a brand-new consumer of ``queue_name`` can read before it idles 500 ms (or ``deadline``,
        monotonic); it acks nothing, so closing it hands every delivery back to the queue."""
        seen, consumer = 0, self.consume(queue_name, prefetch=1000, timeout=500)
        try:
            while time.monotonic() < deadline and next(consumer) is not None:  # None: idle for 500 ms
                seen += 1
        finally:
            consumer.close()  # unacked deliveries go back to the queue
        return seen

    def _declare_xq_queue(self, queue_name):  # Dramatiq's 7-day TTL (quorum queues support it since 3.10)
        arguments = {"x-message-ttl": DEAD_MESSAGE_TTL, **self.dead_letter_arguments}
        return self.channel.queue_declare(queue=xq_name(queue_name), durable=True, arguments=arguments)


def make_broker(options: StackOptions, config: Settings | None = None, name: str = "dramatiq") -> QueuekitBroker:
    """``name`` labels the AMQP connections in the management API (which worker holds what)."""
    config = config or settings()
    middleware = kit_middleware(options)
    broker = QueuekitBroker(
        # cluster: every node, in order (pika tries the next when one refuses): reconnecting is measured
        url=config.pika_urls if config.clustered else config.pika_url,
        confirm_delivery=True,  # every enqueue (send, retry, pipeline step) waits for RabbitMQ's publisher confirm
        middleware=middleware,
        queue_arguments=extra_queue_arguments(options),
        options=options,
        stock=options.stock_framework,
    )
    for params in broker.parameters if isinstance(broker.parameters, list) else [broker.parameters]:
        params.client_properties = {"connection_name": name}
    return broker


def this_process_broker() -> dramatiq.Broker:
    """The worker's broker: RabbitMQ, or Redis when the stack's options say so (dramatiq_redis)."""
    me = this_worker("dramatiq")
    if me.options.transport == "redis":
        from .redis_broker import make_redis_broker  # only the Redis variant's workers need it

        return make_redis_broker(me.options, name=me.name)
    return make_broker(me.options, name=me.name)


dramatiq.set_encoder(dramatiq.JSONEncoder())  # the default, stated: never the PickleEncoder
broker = this_process_broker()
dramatiq.set_broker(broker)
