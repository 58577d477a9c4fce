"""kombu's confluentkafka transport, changed where it loses or stalls: acks, unreadable records, sends.

Acks (``QoS``). Stock kombu 5.7 acks with ``consumer.commit()`` and no offsets: that commits the consumer's
whole position, past every record ``poll()`` returned, acked or not. Acking a later record so commits past
an earlier one still in Celery's hands (prefetched, or still running in another pool process), and if that
one is then never acked — a warm shutdown with prefetched tasks, a consumer restart after a connection
error, a rebalance — nobody reads it again: ``restore_unacked_once`` is a no-op and the group's offset is
past it. That is the loss the scenario suite saw now and then (docs/findings.md; the smallest
reproduction is ``test_stock_kombu_commits_past_an_unacked_message`` in tests/stacks/test_celery_kafka.py).
Here an ack commits, per partition, only up to the first record handed to Celery and not yet acked.
Those commits are asynchronous, as kombu's; one that fails while the group's coordinator is away (a broker
restart) is committed again, synchronously, at the worker's next empty poll (``QoS.confirm``), or the group's
offset would stay behind work that is done.

Stock kombu 5.7 parses every record it polls (``Channel._get``: ``loads(message.value())``) and builds
its message from it (``Channel.Message``: base64 with the codec the record names, ``delivery_tag`` as
a dict key) outside any error handling: a record that is not its JSON object, or whose fields have
other types, or whose body does not decode (any other producer on ``celery.<service>``: kcat, a Kafka
Connect sink, a typo) raises in the worker's event loop, Celery logs "Unrecoverable error" and exits;
the record is never committed, so every worker that takes the partition over dies on it too
(observed: both workers dead, the lag never drains). Here such a record is written to the
topic's ``.dlq`` as a kombu record (body = its bytes, cut to ``TRUNCATED_BYTES``; reason in
``x-queuekit-reason``), flushed, and only then committed past; the poll then counts as empty.

Sends (``Channel._put``). Stock kombu 5.7 produces, flushes and never reads the delivery report, so a
record librdkafka fails counts as sent. Observed: a producer kept across its topic's deletion and
re-creation (the kit's reset between cells does that; so does anyone recreating a topic under a running
Celery) failed a record with "Local: Unknown partition" (librdkafka does not yet handle a recreated topic
on produce: librdkafka PR #5022), and the task was confirmed and never existed — the second
celery_kafka loss of docs/findings.md. Here a send waits for its report: a failure is produced again
after a metadata refresh, and after ``SEND_ATTEMPTS`` the publish raises instead of counting as sent.

Registered as the kombu transport ``qkconfluentkafka`` (``kafka.broker_url``).
"""
from __future__ import annotations

import base64
import json
import logging
import time
import uuid

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from kombu.transport import TRANSPORT_ALIASES, confluentkafka
from kombu.transport.virtual import Empty
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from . import topology
from .kafka import SCHEME

log = logging.getLogger("celery_app.kafka_transport")
TRUNCATED_BYTES = 64 * 1024
# Consumer errors pinned to one record the client cannot decode (repeated on every poll, the partition stalled)
UNDECODABLE = frozenset({KafkaError._BAD_COMPRESSION, KafkaError._BAD_MSG})
SEND_ATTEMPTS = 3  # a record whose delivery failed is produced again (at-least-once; the guard absorbs a repeat)
METADATA_TIMEOUT_S = 10


def deliver(producer, topic: str, value: bytes) -> None:
    """Produce one record and wait for the broker's acknowledgement (acks=all); on a failed delivery refresh
    the topic's metadata and produce it again, and raise after ``SEND_ATTEMPTS`` (at once for a record that
    timed out: librdkafka waited message.timeout.ms for it already): sent means acknowledged."""
    failed: list[KafkaError] = []
    for attempt in range(1, SEND_ATTEMPTS + 1):
        failed.clear()
        producer.produce(topic, value, on_delivery=lambda err, _msg: None if err is None else failed.append(err))
        # As kombu: no timeout, librdkafka's message.timeout.ms bounds it (a broker restart is waited out)
        producer.flush()
        if not failed:
            return
        if failed[0].code() == KafkaError._MSG_TIMED_OUT:  # message.timeout.ms already waited: no second wait
            break
        log.warning("record to %s not delivered (attempt %d of %d): %s", topic, attempt, SEND_ATTEMPTS, failed[0])
        try:
            producer.list_topics(topic, timeout=METADATA_TIMEOUT_S)  # e.g. a recreated topic's new partitions
        except KafkaException as exc:
            log.warning("metadata refresh for %s failed: %s", topic, exc)
    raise KafkaException(failed[0])


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


class Message(confluentkafka.Message):
    def __init__(self, payload, channel=None, **kwargs):
        self.partition, self.offset = payload.get("partition"), payload.get("offset")  # where it sits: what to commit
        super().__init__(payload, channel=channel, **kwargs)


class QoS(confluentkafka.QoS):
    """kombu's QoS, but an ack commits per partition only up to the first record not yet acked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._open: dict[tuple[str, int], set[int]] = {}  # offsets handed to Celery and not acked yet
        self._next: dict[tuple[str, int], int] = {}  # one past the highest offset handed over or settled
        self._unconfirmed: set[tuple[str, int]] = set()  # partitions whose last commit was asynchronous
        self._refused_since: float | None = None  # when confirm()'s commits began to fail (logged once per outage)

    def append(self, message, delivery_tag):
        super().append(message, delivery_tag)
        if message.offset is not None:
            where = (message.topic, message.partition)
            self._open.setdefault(where, set()).add(message.offset)  # open until acked: never committed past
            self._next[where] = max(self._next.get(where, 0), message.offset + 1)

    def ack(self, delivery_tag):
        message = self._not_yet_acked.pop(delivery_tag, None)
        if message is not None:
            self.settle(message.topic, message.partition, message.offset)

    def settle(self, topic: str, partition: int, offset: int, asynchronous: bool = True) -> None:
        """``offset`` is done: commit up to the partition's first open record, or past everything if none is.
        An ack of record 7 while record 5 still runs commits 5, not 8: a restart or a rebalance reads 5 (and
        6, 7) again — at-least-once, the ledger's guard absorbs the repeats — instead of losing it."""
        where = (topic, partition)
        self._open.get(where, set()).discard(offset)
        self._next[where] = max(self._next.get(where, 0), offset + 1)
        # Asynchronous, as kombu's own ack: a commit lost on the way only means a record read twice, and the
        # partition is committed again when the worker is next idle (confirm)
        if asynchronous:
            self._unconfirmed.add(where)
        self.channel._get_consumer(topic).commit(offsets=[TopicPartition(topic, partition, self._upto(where))],
                                                 asynchronous=asynchronous)

    def _upto(self, where: tuple[str, int]) -> int:
        """Where the group's offset belongs now: the first record handed over and not acked, else past all."""
        open_offsets = self._open.get(where)
        return min(open_offsets) if open_offsets else self._next[where]

    def confirm(self, topic: str, consumer) -> None:
        """Commit ``topic``'s partitions that had asynchronous commits again, synchronously, when its poll came
        back empty. An asynchronous commit fails unseen while the group's coordinator is away (a broker restart):
        if it was a burst's last, the group's offset stayed behind work that is done, for good (the drain waited
        on a lag of 9 with all 40 tasks done). Each partition gets where it belongs NOW (``_upto``), never an
        older commit's offset; idle time only; a partition since given to another member is dropped."""
        mine = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        # a snapshot: acks (settle) come from the pool's threads while this runs in the worker's loop
        wanted = [where for where in list(self._unconfirmed) if where[0] == topic]
        for where in wanted:
            self._unconfirmed.discard(where)  # an ack from now on marks it again
        offsets = [TopicPartition(t, p, self._upto((t, p))) for (t, p) in wanted if (t, p) in mine]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # the coordinator is still away: try again at the next idle poll
            if self._refused_since is None:  # once per outage, not at every idle poll (each 1 s) of it
                self._refused_since = time.monotonic()
                log.warning("commit of %s not confirmed yet, retried while idle: %s", offsets, exc)
            self._unconfirmed.update((tp.topic, tp.partition) for tp in offsets)
            return
        if self._refused_since is not None:
            log.warning("commits confirmed again after %.1f s", time.monotonic() - self._refused_since)
            self._refused_since = None


class Channel(confluentkafka.Channel):
    QoS = QoS
    Message = Message

    def _put(self, queue, message, **kwargs):
        """kombu's send of one task (its record, flushed), but sent only once acknowledged (see ``deliver``)."""
        queue = self.sanitize_queue_name(queue)
        deliver(self._get_producer(queue), queue, str_to_bytes(dumps(message)))

    def _get(self, queue, **kwargs):
        queue = self.sanitize_queue_name(queue)
        consumer = self._get_consumer(queue)
        message = consumer.poll(self.wait_time_seconds)
        if not message:
            self.qos.confirm(queue, consumer)
            raise Empty()
        if message.error():
            if message.error().code() in UNDECODABLE and message.offset() is not None and message.offset() >= 0:
                self._skip_undecodable(queue, consumer, message)  # stock kombu: the same error on every poll
            else:
                log.error(message.error())
            raise Empty()
        problem = record_problem(message.value(), self)
        if problem is None:
            return {**json.loads(message.value()), "topic": message.topic(), "partition": message.partition(),
                    "offset": message.offset()}
        self._dead_letter_record(queue, message, problem)
        # Settled only once its dead letter is flushed (a crash before: it comes back, twice at worst), and
        # committed past only as far as the records before it are acked.
        self.qos.settle(message.topic(), message.partition(), message.offset(), asynchronous=False)
        raise Empty()

    def _skip_undecodable(self, queue: str, consumer, message) -> None:
        """A record the client cannot decode (a batch inflating past the bound of ``kafka.py``): no bytes reach
        us, so its dead letter names its coordinates; committed past, then fetched after (a seek)."""
        where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
        self._dead_letter_record(queue, message, f"undecodable record {where}: {message.error().str()}")
        past = TopicPartition(message.topic(), message.partition(), message.offset() + 1)
        try:
            # only once its dead letter is flushed, and never past a record before it that is still open
            self.qos.settle(message.topic(), message.partition(), message.offset(), asynchronous=False)
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
        # not delivered: deliver raises, which leaves the record uncommitted (the worker meets it again)
        deliver(self._get_producer(f"{queue}.dlq"), f"{queue}.dlq", json.dumps(record).encode())


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
