"""Per-record acknowledgement: where the share-group stack's delivery semantics are decided.

    handled (effect applied, output forwarded)    ACCEPT   the record is done for this share group
    TransientError / a crash in the handler       RELEASE  available again at once, delivery count + 1
      … on delivery ``max_retries + 1``           REJECT   (after noting why) -> the group's dlq.* topic
    MalformedMessage / PermanentError             REJECT   (after noting why) -> the group's dlq.* topic
    worker SIGKILLed / lock expired mid-task      nothing  the broker releases it when the lock expires
                                                           or the member's session ends; count + 1
    delivery count reaches the group's limit      (broker) archived, written to the dlq.* topic

The broker writes the dead-letter record (KIP-1191), with the original key
and value (``errors.deadletterqueue.copy.record.enable``) and headers saying
where from and how many deliveries — but not why: REJECT carries no reason.
So before a REJECT the adapter writes the reason, keyed by the record's
coordinates, to ``qks.<service>.dlq-reasons``; ``dead_letters`` joins the two.

When acknowledgements are sent (``options.ack``):

- ``"record"`` (default, written for clarity): ``commit_sync`` right after each
  record: nothing handled waits in the client, so a SIGKILL re-delivers only
  the record in hand. One broker round trip per record (~1k records/s).
- ``"batch"`` (written for throughput): each record's kind is recorded in the
  client as it is handled (``acknowledge`` is local), and ONE ``commit_sync``
  sends the whole poll batch (``max.poll.records`` = ``batch_records``, default
  ``BATCH_RECORDS``). Redelivery window: a SIGKILL before that commit re-delivers
  every record of the batch (up to ``batch_records``), handled or not, once its
  lock expires or the member's session ends; the ledger's idempotency guard
  absorbs the applied ones (with ``guard=False`` they apply twice). A batch
  that outlives the record lock has its acknowledgements refused, likewise.

An acknowledgement for a record whose lock has expired is refused by the broker
(the record was, or will be, delivered again): logged, and the ledger's
idempotency guard absorbs the repeat.
"""
from __future__ import annotations

import json
import logging

from confluent_kafka import AcknowledgeType, Message, Producer, ShareConsumer

from queuekit.core.options import StackOptions

from .topology import Route

log = logging.getLogger("kafka_share_app.acks")
ACCEPT, RELEASE, REJECT = AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE, AcknowledgeType.REJECT
NAMES = {ACCEPT: "ACCEPT", RELEASE: "RELEASE", REJECT: "REJECT"}
COMMIT_TIMEOUT_S = 30.0
ACK_MODES = ("record", "batch")
BATCH_RECORDS = 500  # "batch" mode's max.poll.records: records locked to a member, and acknowledged, per commit


def batch_mode(options: StackOptions) -> bool:
    """True for ``ack="batch"``: one commit per poll batch instead of one per record."""
    if options.ack not in ACK_MODES:
        raise ValueError(f"kafka_share: ack={options.ack!r}, expected one of {ACK_MODES}")
    return options.ack == "batch"


def records_per_poll(options: StackOptions) -> int:
    """max.poll.records: ``prefetch`` per record; ``batch_records`` in batch mode."""
    return max(1, options.batch_records) if batch_mode(options) else max(1, options.prefetch)


# [semantics:offset-commit] a share group keeps each record's state on the broker: the acknowledgement is sent with
# commit_sync, and the share-partition moves past what is ACCEPTed
def acknowledge(consumer: ShareConsumer, msg: Message, kind: AcknowledgeType) -> bool:
    """Record ``kind`` for ``msg`` and send it now; False when the broker refused it (lock lost)."""
    consumer.acknowledge(msg, kind)
    refused = {tp: err for tp, err in consumer.commit_sync(COMMIT_TIMEOUT_S).items() if err is not None}
    if refused:
        log.warning("%s of %s/%d@%d refused (its lock expired: the record is delivered again): %s",
                    NAMES[kind], msg.topic(), msg.partition(), msg.offset(), refused)
    return not refused


def commit(consumer: ShareConsumer, batch: list[Message]) -> bool:
    """Send every acknowledgement recorded for ``batch`` in one request; False when the broker refused some."""
    if not batch:
        return True
    refused = {tp: err for tp, err in consumer.commit_sync(COMMIT_TIMEOUT_S).items() if err is not None}
    if refused:
        log.warning("acknowledgements of a %d-record batch refused (locks expired: those records are delivered "
                    "again): %s", len(batch), refused)
    return not refused


def coordinates(topic: str | None, partition: int | str | None, offset: int | str | None) -> str:
    return f"{topic}/{partition}/{offset}"


def note_reason(producer: Producer, route: Route, msg: Message, why: str, send) -> None:
    """Before a REJECT: why, keyed by where the record is (the broker's DLQ headers carry the same)."""
    value = json.dumps({"reason": why, "service": route.service, "delivery_count": msg.delivery_count()})
    send(producer, route.reasons_topic, coordinates(msg.topic(), msg.partition(), msg.offset()).encode(),
         value.encode())
