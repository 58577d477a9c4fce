"""How a handled record's offset is settled — and with it the delivery guarantee.

``StoredOffsets`` (default): confluent-kafka's ``examples/consumer.py`` pattern.
The offset is *stored* once the record's outputs (forward, retry, DLQ) are
delivered; librdkafka's auto-commit commits it. A crash in between re-delivers
the record: at-least-once, the ledger's guard absorbing the repeat.

``Transactions`` (``options.transactional``): consume-transform-produce. One
Kafka transaction per input record holds what handling it produced AND its
input offset (``send_offsets_to_transaction``); both become visible together
or not at all, and the consumers read ``read_committed``, so an aborted
output is never read downstream. Effects outside Kafka (the ledger) are not
in the transaction: the redo after an abort is absorbed by the ledger's guard.

Fencing. The transactional.id is stable per (service, worker index, slot), so
a restarted worker's ``init_transactions()`` fences its predecessor and aborts
what it left open. A member that lost its partitions in a rebalance sends
stale group metadata with its offsets and its commit is refused (KIP-447).
A worker that dies and is NOT restarted leaves its transaction open until the
coordinator aborts it (``transaction.timeout.ms``, checked every 10 s by the
broker); meanwhile read_committed readers of that partition stop at the open
transaction (the last stable offset): records committed after it wait too.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

log = logging.getLogger("kafka_app.offsets")
TXN_TIMEOUT_S = 30.0  # per transactional call (its own retries included)
Owned = Callable[[], bool]  # is the record's partition still ours? (pause-resume: it may move mid-task)


def _always() -> bool:
    return True


class StoredOffsets:
    """At-least-once: store after handling, librdkafka commits in the background."""

    def __init__(self, consumer: Consumer):
        self.consumer = consumer

    def settle(self, msg: Message, handle: Callable[[Message], None], owned: Owned | None = None) -> None:
        handle(msg)
        if owned is None or owned():  # None: handled in the polling thread, so still ours
            # [semantics:offset-commit] Store the offset AFTER processing (and after any forward/retry/DLQ record is
            # delivered): a crash before this line leaves it uncommitted, so the group re-delivers it: at-least-once.
            store(self.consumer, msg)
        else:  # revoked mid-task: its new owner re-reads it from the committed offset
            log.warning("%s/%d@%d handled after its partition moved: not stored", *where(msg))

    def skip(self, past: TopicPartition, work: Callable[[], None]) -> None:
        """A record the client cannot decode: ``work`` (its dead letter), THEN the offset after it is stored."""
        work()
        try:
            self.consumer.store_offsets(offsets=[past])  # only once its dead letter is delivered
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._STATE:
                raise
            log.warning("%s/%d skipped after its partition moved: its new owner meets it again", past.topic,
                        past.partition)

    def idle(self, skip: Collection[tuple[str, int]] = ()) -> None:
        """Nothing to do: auto-commit runs in the background."""

    def revoked(self, partitions: list[TopicPartition]) -> None:
        commit_stored(self.consumer)  # before the partitions move, so their next owner starts after what we handled


class Transactions:
    """Exactly-once within Kafka: a record's outputs and its offset commit in one transaction."""

    def __init__(self, consumer: Consumer, producer: Producer):
        self.consumer, self.producer = consumer, producer
        self.committed: dict[tuple[str, int], int] = {}  # what this member last committed per partition

    def settle(self, msg: Message, handle: Callable[[Message], None], owned: Owned = _always) -> None:
        self.producer.begin_transaction()  # every record handle() produces (forward, retry, DLQ) joins it
        try:
            handle(msg)  # ends with crash_point("after-output"): a crash there leaves the transaction open
            topic, partition, offset = where(msg)
            if not owned():
                raise Revoked(f"{topic}/{partition} was revoked while its record was handled")
            self._commit([TopicPartition(topic, partition, offset + 1)])
        except (KafkaException, Revoked) as exc:
            self._abort(exc)
            if owned():  # the consumer has moved past the record: rewind so it is handled again
                self.consumer.seek(TopicPartition(*where(msg)))

    def skip(self, past: TopicPartition, work: Callable[[], None]) -> None:
        """A record the client cannot decode: its dead letter and the offset after it, in one transaction."""
        self.producer.begin_transaction()
        try:
            work()
            self._commit([past])
        except KafkaException as exc:
            self._abort(exc)
            raise  # not skipped: the client reports the record again on the next poll

    def idle(self, skip: Collection[tuple[str, int]] = ()) -> None:
        """Step the committed offsets over what poll() skips silently: commit/abort markers, aborted records.

        After handling offset k we commit k+1, which is the transaction's commit marker; the position
        moves past it only on a later poll. Without this step a transactional topic's group lag never
        reaches 0. The position is safe to commit when idle: every record before it was handled and
        committed, or is a marker or aborted. ``skip``: partitions holding an unhandled record.
        """
        ahead = [tp for tp in self.consumer.position(self.consumer.assignment())
                 if tp.offset >= 0 and (tp.topic, tp.partition) not in skip
                 and self.committed.get((tp.topic, tp.partition)) != tp.offset]
        if ahead:
            self.producer.begin_transaction()
            try:
                self._commit(ahead)  # a transaction with offsets only
            except KafkaException as exc:
                self._abort(exc)

    def revoked(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:  # nothing to commit: every handled record's offset went with its transaction
            self.committed.pop((tp.topic, tp.partition), None)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        # The offsets join the transaction with this member's group metadata (generation, member id):
        # if the group has rebalanced without us, the coordinator refuses them (KIP-447 fencing).
        self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), TXN_TIMEOUT_S)
        while True:
            try:
                self.producer.commit_transaction(TXN_TIMEOUT_S)  # outputs and offsets visible together
                break
            except KafkaException as exc:
                if not exc.args[0].retriable():
                    raise
        self.committed.update({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def _abort(self, exc: Exception) -> None:
        error = exc.args[0] if isinstance(exc, KafkaException) else None
        if isinstance(error, KafkaError) and error.fatal():
            raise exc  # e.g. fenced: a newer producer with our transactional.id exists; this one must stop
        log.warning("aborting a transaction: %s", exc)
        self.producer.abort_transaction(TXN_TIMEOUT_S)  # its records get an abort marker: read_committed skips them


class Revoked(Exception):
    """The record's partition moved to another member while it was handled: settle nothing."""


def store(consumer: Consumer, msg: Message) -> None:
    """Mark ``msg`` done: auto-commit will commit the offset after it."""
    try:
        consumer.store_offsets(msg)
    except KafkaException as exc:  # the partition was taken from us meanwhile (rebalance, max.poll.interval)
        if exc.args[0].code() != KafkaError._STATE:
            raise
        log.warning("%s/%d@%d handled after its partition moved: its new owner re-delivers it", *where(msg))


def commit_before_handling(consumer: Consumer, msg: Message) -> bool:
    """At-most-once (``early_ack``): commit the offset past ``msg`` synchronously, and say whether the group
    coordinator took it. Only then may the handler run: a crash mid-handler skips the record, since the broker
    already knows it as consumed. (Storing alone would leave the commit to the 200 ms auto-commit timer: a
    crash before it fires re-delivers.)

    False: the commit failed, so the record must NOT be handled here. A synchronous commit fails when the
    group no longer counts this member as the partition's owner: evicted after a missed session timeout
    (2 s here: a starved heartbeat on a loaded machine; UNKNOWN_MEMBER_ID, seen in a full run's worker logs),
    gone past max.poll.interval.ms (_ASSIGNMENT_LOST), or a rebalance that moved on without it. The old code
    logged that and handled the record anyway, with its offset uncommitted, so the next owner re-read it:
    the one mechanism found that explains the early-ack cell's single lost 0 in CI (tests/stacks/test_kafka.py
    shows the failing commit on the real broker). The caller seeks back to the record: the next poll rejoins
    or serves the rebalance and returns the record again if the partition is still ours (the commit is tried
    again), or its new owner reads it from the committed offset."""
    topic, partition, offset = where(msg)
    past = TopicPartition(topic, partition, offset + 1)
    try:
        consumer.store_offsets(offsets=[past])  # the same offset, so auto-commit never moves it back
        # [semantics:offset-commit] early_ack: committed and ACKNOWLEDGED by the coordinator before the handler
        done = consumer.commit(offsets=[past], asynchronous=False)
    except KafkaException as exc:  # the request failed: rebalance in progress, revoked (_STATE), coordinator moved
        log.warning("%s/%d@%d: early commit not done (%s): not handled here", topic, partition, offset, exc)
        return False
    if refused := [tp.error for tp in done or [] if tp.error is not None]:  # per-partition answer
        log.warning("%s/%d@%d: early commit refused (%s): not handled here", topic, partition, offset, refused[0])
        return False
    return True


def commit_stored(consumer: Consumer) -> None:
    """Commit what was stored (on revoke: before the partitions move, so their next owner starts after it)."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:  # _NO_OFFSET: nothing stored since the last commit
            log.warning("commit on revoke failed: %s", exc)


def where(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (one without an error: all three are set)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None, "an error event, not a record"
    return topic, partition, offset
