"""kombu's confluentkafka transport, with one change: a record that is not kombu's JSON is dead-lettered.

Stock kombu 5.7 parses every record it polls (``Channel._get``: ``loads(message.value())``) and builds
its message from it (``Channel.Message``: base64 with the codec the record names, ``delivery_tag`` as
a dict key) outside any error handling: a record that is not its JSON object, or whose fields have
other types, or whose body does not decode (any other producer on ``celery.<service>``: kcat, a Kafka
Connect sink, a typo) raises in the worker's event loop, Celery logs "Unrecoverable error" and exits;
the record is never committed, so every worker that takes the partition over dies on it too
(observed: both workers dead, the lag never drains). Here such a record is written to the
topic's ``.dlq`` as a kombu record (body = its bytes, cut to ``TRUNCATED_BYTES``; reason in
``x-queuekit-reason``), flushed, and only then committed past; the poll then counts as empty.

Registered as the kombu transport ``qkconfluentkafka`` (``kafka.broker_url``).
"""
from __future__ import annotations

import base64
import json
import logging
import uuid

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from kombu.transport import TRANSPORT_ALIASES, confluentkafka
from kombu.transport.virtual import Empty

from . import topology
from .kafka import SCHEME

log = logging.getLogger("celery_app.kafka_transport")
TRUNCATED_BYTES = 64 * 1024
# Consumer errors pinned to one record the client cannot decode (repeated on every poll, the partition stalled)
UNDECODABLE = frozenset({KafkaError._BAD_COMPRESSION, KafkaError._BAD_MSG})


# The record's fields kombu reads before any Celery code runs, and the types it assumes (None: absent is fine).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "body": (str, type(None)), "content-type": (str, type(None)), "content-encoding": (str, type(None)),
    "headers": (dict, type(None)), "properties": (dict,),
}
PROPERTY_TYPES: dict[str, tuple[type, ...]] = {
    "delivery_tag": (str,), "body_encoding": (str, type(None)), "delivery_info": (dict, type(None)),
}


def record_problem(value: bytes | None, channel=None) -> str | None:
    """Why kombu cannot read this record as a message, or None.

    The types first (a list where kombu expects a string is an unhashable delivery tag, a dict as body
    breaks base64), then, given the channel, kombu's own construction of the message (``Channel.Message``:
    it base64-decodes the body with the codec the record names and inflates a ``compression`` header,
    bounded by ``compression.py``): whatever raises there would have raised in the worker's event loop."""
    try:
        doc = json.loads(value or b"")
    except (ValueError, RecursionError) as exc:
        return f"not a kombu record: {type(exc).__name__}: {str(exc)[:200]}"
    if not isinstance(doc, dict):
        return f"not a kombu record: a JSON {type(doc).__name__}, not an object"
    props = doc.get("properties")
    if not isinstance(props, dict) or "delivery_tag" not in props:
        return "not a kombu record: no properties.delivery_tag"
    for where, fields, types in (("", doc, FIELD_TYPES), ("properties.", props, PROPERTY_TYPES)):
        for name, allowed in types.items():
            if not isinstance(fields.get(name), allowed):
                return (f"not a kombu record: {where}{name} is {type(fields.get(name)).__name__}, "
                        f"not {'/'.join(t.__name__ for t in allowed if t is not type(None))}")
    if channel is not None and doc.get("body") and props.get("body_encoding") not in (None, *channel.codecs):
        return f"not a kombu record: body encoding {str(props.get('body_encoding'))[:40]!r} is not one kombu has"
    if channel is not None:
        try:
            channel.Message(doc, channel=channel)  # kombu's own reading of it, as the consumer's callback will
        except Exception as exc:  # noqa: BLE001 - anything kombu raises here is the record's fault
            return f"not a kombu record: the body does not decode: {type(exc).__name__}: {str(exc)[:200]}"
    return None


class Channel(confluentkafka.Channel):
    def _get(self, queue, **kwargs):
        queue = self.sanitize_queue_name(queue)
        consumer = self._get_consumer(queue)
        message = consumer.poll(self.wait_time_seconds)
        if not message:
            raise Empty()
        if message.error():
            if message.error().code() in UNDECODABLE and message.offset() is not None and message.offset() >= 0:
                self._skip_undecodable(queue, consumer, message)  # stock kombu: the same error on every poll
            else:
                log.error(message.error())
            raise Empty()
        problem = record_problem(message.value(), self)
        if problem is None:
            return {**json.loads(message.value()), "topic": message.topic()}
        self._dead_letter_record(queue, message, problem)
        # Committed past only once its dead letter is flushed (a crash before: it comes back, twice at worst).
        # An explicit offset: this partition's committed position moves past it, as kombu's own ack would.
        consumer.commit(offsets=[TopicPartition(message.topic(), message.partition(), message.offset() + 1)],
                        asynchronous=False)
        raise Empty()

    def _skip_undecodable(self, queue: str, consumer, message) -> None:
        """A record the client cannot decode (a batch inflating past the bound of ``kafka.py``): no bytes reach
        us, so its dead letter names its coordinates; committed past, then fetched after (a seek)."""
        where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
        self._dead_letter_record(queue, message, f"undecodable record {where}: {message.error().str()}")
        past = TopicPartition(message.topic(), message.partition(), message.offset() + 1)
        try:
            consumer.commit(offsets=[past], asynchronous=False)  # only once its dead letter is flushed
            consumer.seek(past)  # the client would fetch the same record again: resume after it
        except KafkaException as exc:  # not committed (rebalance): met again, dead-lettered again (at-least-once)
            log.warning("could not move past %s: %s", where, exc)

    def _dead_letter_record(self, queue: str, message, reason: str) -> None:
        value = (message.value() if not message.error() else None) or b""
        headers: dict[str, str | int] = {topology.REASON_HEADER: reason[:1000], topology.FRAME_HEADER: "kafka-record",
                   "x-queuekit-queue": queue}
        if len(value) > TRUNCATED_BYTES:
            headers["x-queuekit-truncated-from"] = len(value)
            value = value[:TRUNCATED_BYTES]
        log.warning("dead-lettering a record from %s: %s", queue, reason[:300])
        record = {"body": base64.b64encode(value).decode(), "content-encoding": "binary",
                  "content-type": "application/octet-stream", "headers": headers,
                  "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4()), "delivery_info": {}}}
        producer = self._get_producer(f"{queue}.dlq")
        producer.produce(f"{queue}.dlq", json.dumps(record).encode())
        if producer.flush(30):  # not delivered: raising here leaves it uncommitted (the worker retries it)
            raise RuntimeError(f"dead letter of a record from {queue} not delivered")


DRAIN_TURN_S = 0.25  # the longest turn of the worker's blocking loop (see Transport.drain_events)


class Transport(confluentkafka.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        # Celery's blocking loop (this transport has no event loop of its own) asks for up to 2 s of
        # polling per turn and only checks for a warm shutdown between turns: a stop waited up to 2 s
        # before the worker even began to close. Shorter turns change nothing else: one poll() per queue
        # per turn either way (wait_time_seconds), and a turn ends at once when a message came. Without a
        # timeout (block until a message) it is left as asked.
        return super().drain_events(connection, timeout=min(timeout, DRAIN_TURN_S) if timeout else timeout)


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
