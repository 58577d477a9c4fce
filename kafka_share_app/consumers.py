"""The share-consumer loop: poll, ``queuekit.core.execute.process`` each record, acknowledge it (``acks.py``).

    Outcome               forward the result to the next pipeline topic, then ACCEPT
    MalformedMessage,     note the reason, REJECT (the broker writes the record to dlq.qks.<service>)
    PermanentError
    anything else         RELEASE: delivered again at once (no backoff: KIP-932 has no redelivery
    (TransientError, …)   delay), to whichever member fetches first; on delivery max_retries + 1: REJECT

``early_ack``: ACCEPT is sent before the handler runs (at-most-once: a SIGKILL
or a failure loses the record).

Two acknowledgement modes (``options.ack``, see ``acks.py``): ``"record"`` (the default,
written for clarity) commits after every record; ``"batch"`` (written for throughput) records each
record's acknowledgement as it is handled and commits once per poll batch. Every member may read every partition the
broker assigns it, and the broker may assign one partition to several
members: workers beyond the partition count still get records.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import cast

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, KafkaException, Message, Producer, ShareConsumer

from queuekit.core.envelope import MalformedMessage, decode, encode
from queuekit.core.execute import PermanentError, crash_point, forward, process
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.timings import HOP_EVERY, delivery

from .acks import ACCEPT, REJECT, RELEASE, AcknowledgeType, acknowledge, batch_mode, commit, note_reason
from .topology import Route

log = logging.getLogger("kafka_share_app.consumers")
POLL_S = 0.5  # how often a loop looks at its stop flag; poll() returns at once when records arrive
SEND_TIMEOUT_S = 30.0
# Consumer errors pinned to one record the client cannot decode
UNDECODABLE = frozenset({KafkaError._BAD_COMPRESSION, KafkaError._BAD_MSG})


@dataclass
class Service:
    """One consumer thread's world: a member of one service's share group and the producer it owns."""

    route: Route
    consumer: ShareConsumer
    producer: Producer  # owned by this thread alone: flush() waits for exactly our own records
    ledger: Ledger
    worker: str
    options: StackOptions


def consume(svc: Service, stop: threading.Event) -> None:
    svc.consumer.subscribe([svc.route.source])
    per_batch = batch_mode(svc.options)
    while not stop.is_set():
        batch = [msg for msg in svc.consumer.poll(POLL_S) if usable(svc, msg)]  # records now locked to this member
        if per_batch:
            consume_batch(svc, batch)
            continue
        for msg in batch:
            # [semantics:ack-timing] default: handle, THEN acknowledge (at-least-once); early_ack ACCEPTs before
            # handling (at-most-once)
            if svc.options.early_ack:
                acknowledge(svc.consumer, msg, ACCEPT)  # early_ack: done for the broker BEFORE handling
                stamped(svc, msg)  # whatever happens now, the record will not come back
            else:
                kind = stamped(svc, msg)  # handle first ...
                acknowledge(svc.consumer, msg, kind)  # ... THEN acknowledge: at-least-once
    svc.consumer.close()  # sends what is acknowledged, releases what is not, leaves the group


def consume_batch(svc: Service, batch: list[Message]) -> None:
    """Written for throughput: every record acknowledged in the client as it is handled, ONE commit per poll."""
    if svc.options.early_ack:
        for msg in batch:
            svc.consumer.acknowledge(msg, ACCEPT)  # early_ack: the whole batch done for the broker ...
        commit(svc.consumer, batch)  # ... sent BEFORE any handling: at-most-once for the batch
        for msg in batch:
            stamped(svc, msg)
        return
    for msg in batch:
        svc.consumer.acknowledge(msg, stamped(svc, msg))  # handled first; held in the client, not sent yet
    # After the whole batch: a SIGKILL before this re-delivers every record of the batch (at-least-once;
    # the ledger's idempotency guard absorbs the ones already applied).
    commit(svc.consumer, batch)


def usable(svc: Service, msg: Message) -> bool:
    """A record, not an error event; a fatal error stops the consumer; a record the client could not decode
    is rejected here (its reason noted by its coordinates) and is not handled."""
    if (err := msg.error()) is not None:
        if err.fatal():
            raise KafkaException(err)
        if err.code() in UNDECODABLE and (at := msg.offset()) is not None and at >= 0:
            reject_undecodable(svc, msg)
        else:
            log.warning("share consumer error: %s", err)
        return False
    return True


def stamped(svc: Service, msg: Message) -> AcknowledgeType:
    """``handle``; 1 record in ``HOP_EVERY`` (by offset) notes when it got here, and its broker append time
    when the topic keeps LogAppendTime, for ``queuekit bench``'s hops (as ``kafka_app.consumers.stamped``)."""
    if (msg.offset() or 0) % HOP_EVERY:  # 49 records in 50: nothing else on the hot path
        return handle(svc, msg)
    kind, ms = msg.timestamp()
    with delivery(ms / 1000 if kind == TIMESTAMP_LOG_APPEND_TIME else None):
        return handle(svc, msg)


# [handler:*] one record: decode, process, forward; returns how to acknowledge it
def handle(svc: Service, msg: Message) -> AcknowledgeType:
    """Process one record and send what it produces; return how to acknowledge it."""
    attempt = msg.delivery_count() or 1  # the broker's count: 1 on the first delivery, +1 per release or lock expiry
    try:
        env = decode(cast(bytes, msg.value()))  # a null value too: decode refuses it by name
        # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger
        # transaction: a redelivery has no second effect
        outcome = process(env, service=svc.route.service, worker=svc.worker, ledger=svc.ledger,
                          guard=svc.options.guard)
    except (MalformedMessage, PermanentError) as exc:  # never retried
        return reject(svc, msg, reason(exc))
    except Exception as exc:  # TransientError or a crash in the handler
        # [semantics:retries] RELEASE: delivered again at once (KIP-932 has no redelivery delay), the broker counting
        # deliveries; on delivery max_retries + 1: REJECT
        if attempt > svc.options.max_retries:
            return reject(svc, msg, reason(exc))
        log.info("releasing %s/%d@%d (delivery %d): %s", msg.topic(), msg.partition(), msg.offset(), attempt,
                 reason(exc))
        return RELEASE
    if svc.route.sink:  # pipeline: the next step's input carries this step's result
        send(svc.producer, svc.route.sink, msg.key(), encode(forward(env, outcome)))
    crash_point(env.headers, svc.route.service, outcome.attempt, "after-output")  # harness fault only
    return ACCEPT


# [semantics:dead-letter] REJECT: the broker writes the record to dlq.qks.<service> (KIP-1191); the reason is written
# first to qks.<service>.dlq-reasons
def reject(svc: Service, msg: Message, why: str) -> AcknowledgeType:
    if svc.options.early_ack:  # already accepted: nothing left to reject; the record is gone
        log.warning("%s/%d@%d failed after an early ACCEPT: lost (%s)", msg.topic(), msg.partition(), msg.offset(), why)
        return REJECT
    note_reason(svc.producer, svc.route, msg, why, send)
    log.warning("rejecting %s/%d@%d for %s: %s", msg.topic(), msg.partition(), msg.offset(), svc.route.service, why)
    return REJECT


def reject_undecodable(svc: Service, msg: Message) -> None:
    """A record the client cannot decode (a batch inflating past FETCH_MAX_BYTES): its bytes never reach us.
    Its reason, keyed by its coordinates, is noted first (the broker's dead-letter copy of it has a null key
    and value: the coordinates are what names it), then it is REJECTed like any malformed record."""
    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    note_reason(svc.producer, svc.route, msg, f"undecodable record {where}: {cast(KafkaError, msg.error()).str()}", send)
    log.warning("rejecting undecodable record %s for %s: %s", where, svc.route.service, msg.error())
    acknowledge(svc.consumer, msg, REJECT)


def send(producer: Producer, topic: str, key: bytes | None, value: bytes | None) -> None:
    """Produce one record and wait for its delivery report (acks=all)."""
    failed: list[KafkaError] = []
    producer.produce(topic, value, key, on_delivery=lambda err, _: None if err is None else failed.append(err))
    if producer.flush(SEND_TIMEOUT_S) or failed:  # not delivered: raise; the record stays unacknowledged
        raise KafkaException(failed[0] if failed else KafkaError(KafkaError._MSG_TIMED_OUT))


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
