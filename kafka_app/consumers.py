"""The consumer loops: poll a record, ``queuekit.core.execute.process`` it, route the outcome, store the offset.

Outcome -> what the consumer does before it stores the record's offset:

    Outcome               forward the result to the next pipeline topic (``execute.forward``), if any
    MalformedMessage,     produce the ORIGINAL bytes to ``qk.<service>.dlq`` with headers reason,
    PermanentError        service, attempts, original-topic/-partition/-offset
    anything else         produce the original bytes to ``qk.<service>.retry`` with headers attempts and
    (TransientError, …)   not-before-ms = now + backoff_ms * 2**(attempt-1); after max_retries: the DLQ

Every record we produce is waited for (delivery report) before the input's
offset is settled (``offsets.py``): stored for auto-commit (default), so a
crash in between re-delivers the input rather than losing its output —
at-least-once end to end; or, with ``options.transactional``, committed in
the same Kafka transaction as those records — exactly-once within Kafka.
With ``options.long_task = "pause-resume"`` the record is handled in a worker
thread while the consumer thread keeps polling (``long_tasks.py``). Kafka has
no retry or dead-letter of its own; these two topics are ours.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from typing import cast

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from queuekit.core.envelope import MalformedMessage, decode, encode
from queuekit.core.execute import PermanentError, crash_point, forward, process
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.timings import HOP_EVERY, delivery

from .long_tasks import PausedWork
from .offsets import StoredOffsets, Transactions, commit_before_handling, where
from .topology import Route

log = logging.getLogger("kafka_app.consumers")
POLL_S = 0.5  # how often a loop looks at its stop flag; poll() returns at once when a record arrives
SEND_TIMEOUT_S = 30.0
ORIGIN = ("original-topic", "original-partition", "original-offset")
MAX_KEY_BYTES = 1024  # a record key is a user id; anything longer is malformed
MAX_REASON = 1000  # characters of the reason header
MAX_DEAD_LETTER_BYTES = 512 * 1024  # key + value kept whole up to here (the broker's limit is 1 MiB)
TRUNCATED_VALUE_BYTES = 64 * 1024  # what an oversize dead letter keeps of the value
# Consumer errors pinned to one record the client cannot decode (it repeats them on every poll, never moving on)
UNDECODABLE = frozenset({KafkaError._BAD_COMPRESSION, KafkaError._BAD_MSG})


@dataclass
class Service:
    """One consumer thread's world: a group member of one service and the producer it owns."""

    route: Route
    consumer: Consumer
    producer: Producer  # owned by this thread alone, so flush() waits for exactly our own records
    ledger: Ledger
    worker: str  # the ledger's worker name (QUEUEKIT_WORKER_NAME)
    options: StackOptions
    offsets: StoredOffsets | Transactions  # how a handled record's offset is settled
    paused: PausedWork | None = None  # long_task "pause-resume": handle in a thread, keep polling

    def __post_init__(self) -> None:
        self.handle = partial(stamped, self)  # what settle() runs on a record, built once rather than per record


def consume(svc: Service, stop: threading.Event) -> None:
    """A member of group ``qk.<service>`` on the service's source topic."""
    subscribe(svc, svc.route.source)
    while not stop.is_set():
        # [semantics:prefetch] one record at a time: librdkafka fetches ahead, but only a handled record's offset is
        # stored, so what was fetched and not done is read again after a crash
        msg = svc.consumer.poll(POLL_S)  # returns at once when a record is fetched
        if msg is None:
            svc.offsets.idle()  # transactional: step the committed offsets over commit markers
            continue
        if msg.error() is not None:  # not a record: a client error, or a record it could not decode
            not_a_record(svc, msg)  # the latter: dead-lettered, then skipped
            continue
        # [semantics:ack-timing] default: handle, THEN store the offset (at-least-once); early_ack commits it before
        # handling (at-most-once)
        if svc.options.early_ack and not commit_before_handling(svc.consumer, msg):  # at-most-once: committed first
            rewind(svc.consumer, msg)  # not committed: not handled; read again after the rebalance, by us or not
            continue
        work(svc, msg)  # handle it, THEN store its offset / commit it with the outputs' transaction
    svc.consumer.close()  # commits the stored offsets and leaves the group (a rebalance now, not in 6 s)


def consume_retries(svc: Service, stop: threading.Event) -> None:
    """A member of group ``qk.<service>.retry``: holds a record (its partition paused) until it is due."""
    held: dict[tuple[str, int], tuple[Message, float]] = {}  # paused partition -> (its head record, due at)

    def forget(partitions: list[TopicPartition]) -> None:  # revoked: unstored, so the next owner re-reads it
        for tp in partitions:
            if held.pop((tp.topic, tp.partition), None):
                svc.consumer.resume([TopicPartition(tp.topic, tp.partition)])

    subscribe(svc, svc.route.retry_topic, forget)
    while not stop.is_set():
        for key, (head, due) in list(held.items()):
            if due <= time.time():
                del held[key]
                work(svc, head, keep_paused=held)  # handled, then settled, as in consume()
                svc.consumer.resume([TopicPartition(*key)])  # fetching restarts at the record after it
        wait = min([POLL_S, *(due - time.time() for _, due in held.values())])
        msg = svc.consumer.poll(max(wait, 0.0))  # blocks until a record or the next due time: no busy loop
        if msg is None:
            svc.offsets.idle(skip=held)  # a held record is fetched but not handled: its offset must not move
            continue
        if msg.error() is not None:
            not_a_record(svc, msg)
            continue
        due = not_before(svc, msg)
        if due > time.time():
            # Not due: pause the partition (librdkafka drops what it prefetched and will resume
            # right after this record) and keep the record; later records of the partition wait behind it.
            topic, partition, _ = where(msg)
            svc.consumer.pause([TopicPartition(topic, partition)])
            held[(topic, partition)] = (msg, due)
            continue
        work(svc, msg, keep_paused=held)  # after processing: at-least-once (or in its transaction)
    svc.consumer.close()


def work(svc: Service, msg: Message, keep_paused: Collection[tuple[str, int]] = ()) -> None:
    """Handle ``msg`` and settle its offset: right here (blocking the poll loop: a handler longer than
    max.poll.interval.ms gets this member evicted), or in a worker thread while this one keeps polling."""
    if svc.paused is None:  # the common path: no closure built per record
        svc.offsets.settle(msg, svc.handle)
        return

    def settle(owned: Callable[[], bool]) -> None:
        svc.offsets.settle(msg, svc.handle, owned)

    svc.paused.run(msg, settle, keep_paused)


def stamped(svc: Service, msg: Message) -> None:
    """``handle``; 1 record in ``HOP_EVERY`` (by offset) notes when it got here, and its broker append time
    when the topic keeps LogAppendTime (the kit's keep CreateTime: the producer's clock, not a broker hop),
    for the completion it records (``queuekit bench``'s hops; the others pay one modulo)."""
    if (msg.offset() or 0) % HOP_EVERY:  # 49 records in 50: nothing else on the hot path
        return handle(svc, msg)
    kind, ms = msg.timestamp()
    with delivery(ms / 1000 if kind == TIMESTAMP_LOG_APPEND_TIME else None):
        handle(svc, msg)


# [handler:*] one record: decode, process, then forward / retry / dead-letter; the offset is settled by the caller
def handle(svc: Service, msg: Message) -> None:
    """Process one record and send what it produces; return once that is delivered (the offset may go).

    Whatever the producer put in the record (value, key, headers) ends here as an effect, a retry or
    a dead letter: nothing of the record is read outside this error handling.
    """
    attempt = 1
    try:
        attempt = attempts_so_far(svc, msg) + 1
        if len(key := msg.key() or b"") > MAX_KEY_BYTES:
            raise MalformedMessage(f"key of {len(key)} bytes, over {MAX_KEY_BYTES}")
        env = decode(cast(bytes, msg.value()))  # MalformedMessage: below (a null value too; size, depth before parsing)
        # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger
        # transaction: a re-read record has no second effect
        outcome = process(env, service=svc.route.service, worker=svc.worker, ledger=svc.ledger,
                          guard=svc.options.guard)
    except (MalformedMessage, PermanentError) as exc:  # never retried: straight to the DLQ
        dead_letter(svc, msg, reason(exc), attempt)
    except Exception as exc:  # TransientError or a crash in the handler: retry, then dead-letter
        if attempt > svc.options.max_retries:
            dead_letter(svc, msg, reason(exc), attempt)
        else:
            # [semantics:retries] a retry is a record on qk.<service>.retry, due after backoff_ms * 2**(attempt-1);
            # its own group holds it (partition paused) until then
            delay_ms = svc.options.backoff_ms * 2 ** (attempt - 1)  # the first retry after backoff_ms, doubling
            not_before = math.ceil(time.time() * 1000) + delay_ms  # ceil: never a millisecond early
            send(svc.producer, svc.route.retry_topic, msg.key(), msg.value(),
                 {**origin(msg), "attempts": attempt, "not-before-ms": not_before, "error": reason(exc)})
    else:
        if svc.route.sink:  # pipeline: the next step's input carries this step's result
            send(svc.producer, svc.route.sink, msg.key(), encode(forward(env, outcome)))
        crash_point(env.headers, svc.route.service, outcome.attempt, "after-output")  # harness fault only


def attempts_so_far(svc: Service, msg: Message) -> int:
    """Attempts before this one. Only our retry topic carries the count; on any other topic an
    ``attempts`` header is a producer's and is ignored. A count that is not a number (or over the
    limit) is taken as exhausted: one more failure dead-letters the record."""
    if msg.topic() != svc.route.retry_topic:
        return 0
    try:
        count = int(header(msg, "attempts") or 0)
    except ValueError:
        return svc.options.max_retries
    return min(max(count, 0), svc.options.max_retries)


# [semantics:dead-letter] the original bytes to qk.<service>.dlq with the reason in headers, delivered before the
# offset is stored
def dead_letter(svc: Service, msg: Message, why: str, attempts: int) -> None:
    """The DLQ record: the original bytes, and why, where from, after how many attempts.

    A record too big for the DLQ beside its headers (a value just under the broker's limit) is
    written truncated, saying so, rather than failing the send and with it the worker."""
    key, value = msg.key(), msg.value()
    headers = {**origin(msg), "reason": why[:MAX_REASON], "service": svc.route.service, "attempts": attempts}
    if len(key or b"") + len(value or b"") > MAX_DEAD_LETTER_BYTES:
        headers["truncated-from"] = f"key {len(key or b'')} bytes, value {len(value or b'')} bytes"
        key, value = (key or b"")[:MAX_KEY_BYTES] or None, (value or b"")[:TRUNCATED_VALUE_BYTES]
    send(svc.producer, svc.route.dlq_topic, key, value, headers)
    log.warning("dead-lettered %s/%d@%d for %s: %s", msg.topic(), msg.partition(), msg.offset(),
                svc.route.service, why[:200])


def send(producer: Producer, topic: str, key: bytes | None, value: bytes | None, headers: dict | None = None) -> None:
    """Produce one record and wait for its delivery report (acks=all)."""
    failed: list[KafkaError] = []
    producer.produce(topic, value, key, headers={k: str(v) for k, v in (headers or {}).items()},
                     on_delivery=lambda err, _: None if err is None else failed.append(err))
    if producer.flush(SEND_TIMEOUT_S) or failed:  # not delivered: raise, leaving the input's offset unstored
        raise KafkaException(failed[0] if failed else KafkaError(KafkaError._MSG_TIMED_OUT))


def not_before(svc: Service, msg: Message) -> float:
    """When a retry record is due: its header, but never later than our own longest backoff from now
    (a record written straight onto the retry topic must not pause a partition for a year)."""
    latest = time.time() + svc.options.backoff_ms * 2 ** svc.options.max_retries / 1000
    try:
        return min(int(header(msg, "not-before-ms") or 0) / 1000, latest)
    except ValueError:
        return 0.0  # not a number: due now


def origin(msg: Message) -> dict:
    """Where the record was first consumed: a retried record keeps its first hop's coordinates."""
    coordinates = where(msg)
    here = dict(zip(ORIGIN, coordinates))
    if coordinates[0].endswith(".retry"):  # only our retry records carry a first hop; elsewhere a header lies
        return {name: (header(msg, name) or str(here[name]))[:300] for name in ORIGIN}
    return here


def subscribe(svc: Service, topic: str, forget: Callable[[list[TopicPartition]], None] = lambda _: None) -> None:
    def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        forget(partitions)
        if svc.paused:
            svc.paused.forget(partitions)  # a task running on one of them must not settle its offset
        svc.offsets.revoked(partitions)  # stored offsets: commit them before the partitions move

    def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        forget(partitions)  # evicted (session timeout): another member may own them; committing would be wrong
        if svc.paused:
            svc.paused.forget(partitions)
        log.warning("%s lost %s", svc.route.service, [(tp.topic, tp.partition) for tp in partitions])

    hooks = {"on_assign": svc.paused.assigned} if svc.paused else {}  # pause what arrives mid-task
    svc.consumer.subscribe([topic], on_revoke=on_revoke, on_lost=on_lost, **hooks)


def rewind(consumer: Consumer, msg: Message) -> None:
    """Fetch ``msg`` again (its partition's position had moved past it), unless the partition is gone already."""
    try:
        consumer.seek(TopicPartition(*where(msg)))
    except KafkaException as exc:  # revoked meanwhile: its new owner starts from the committed offset
        log.info("rewind to %s/%d@%d not done: %s", *where(msg), exc)


def not_a_record(svc: Service, msg: Message) -> None:
    """What poll() returned in place of a record: a fatal error stops the thread (and so the worker); a record
    the client could not decode is dead-lettered and skipped; anything else is logged."""
    err = cast(KafkaError, msg.error())
    if err.fatal():
        raise KafkaException(err)
    if err.code() in UNDECODABLE and (at := msg.offset()) is not None and at >= 0:
        skip_undecodable(svc, msg)  # pinned to one record: dead-letter it and move past it
    else:
        log.warning("consumer error: %s", err)


def skip_undecodable(svc: Service, msg: Message) -> None:
    """A record librdkafka cannot decode (a batch that does not inflate, or inflates past FETCH_MAX_BYTES):
    its bytes never reach us, so its dead letter is its coordinates and the client's reason (value null).

    Stock behaviour: the client reports the same error on every poll and fetches the same offset again,
    so the partition never moves (observed: the records behind it never handled). Here the dead letter
    is delivered, THEN the offset after the record is settled, THEN fetching resumes after it."""
    topic, partition, offset = where(msg)  # an undecodable record's error still names its coordinates
    past = TopicPartition(topic, partition, offset + 1)
    why = f"undecodable record {topic}[{partition}]@{offset}: {cast(KafkaError, msg.error()).str()}"
    headers = {**dict(zip(ORIGIN, (msg.topic(), msg.partition(), msg.offset()))), "reason": why[:MAX_REASON],
               "service": svc.route.service, "attempts": 0}
    svc.offsets.skip(past, lambda: send(svc.producer, svc.route.dlq_topic, None, None, headers))
    try:
        svc.consumer.seek(past)  # the client would fetch the same record again: resume after it
    except KafkaException as exc:  # revoked meanwhile: its new owner starts from the offset settled above
        log.info("seek past %s not done: %s", why[:100], exc)
    log.warning("dead-lettered %s for %s", why[:300], svc.route.service)


def header(msg: Message, name: str) -> str | None:
    """The first header ``name`` as text (bytes that are not UTF-8 replaced, never an error)."""
    headers: list[tuple[str, bytes | None]] = cast(list, msg.headers() or [])  # a consumed record's: a list
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else None
    return None


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"  # MalformedMessage's str() is its reason ("field 'user_id' must be int")
