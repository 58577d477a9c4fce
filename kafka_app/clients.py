"""confluent-kafka client configurations: where the Kafka stack's delivery semantics are decided.

Producer: idempotent, ``acks=all``; a record counts as sent only when its
delivery report says so. Consumer: the confluent-kafka ``examples/consumer.py``
pattern — offsets are *stored* by the application after a record is handled
(``enable.auto.offset.store=false`` + ``store_offsets(msg)``) and *committed*
by librdkafka's background auto-commit every ``COMMIT_INTERVAL_MS``, on a
rebalance (our ``on_revoke``) and on ``close()``. That gives at-least-once:
a crash re-delivers what was handled but not yet committed.

Why auto-commit of stored offsets rather than an explicit ``commit()`` per
record: a synchronous commit costs a broker round trip per record; the store
already fixes *which* offset may be committed, so committing it 200 ms later
only widens the window of re-delivery after a SIGKILL (duplicates the ledger's
idempotency guard absorbs), never loses a record.

librdkafka logs go to the ``kafka_app.rdkafka`` Python logger (served on
poll), so tests capture them instead of printing to stderr.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions

from .topology import READER_GROUP

LOG = logging.getLogger("kafka_app.rdkafka")
COMMIT_INTERVAL_MS = 200  # how stale a committed offset may be; drain() waits for the commit
SESSION_TIMEOUT_MS = 2000  # default; raised to the broker's group.min.session.timeout.ms if that is higher
MAX_POLL_INTERVAL_MS = 300_000  # librdkafka's default
# Bounded decompression: librdkafka inflates a compressed batch only up to receive.message.max.bytes
# (default 100 MB: observed, a 4 KB zstd record is inflated to 100 MB before the client gives up). A batch
# of the kit's producers is at most their batch size (1 MB); past this bound the client reports
# _BAD_COMPRESSION for the record instead of inflating further (consumers.py dead-letters it by coordinates).
FETCH_MAX_BYTES = 4 * 1024 * 1024
BOUNDED_FETCH = {"fetch.max.bytes": FETCH_MAX_BYTES, "receive.message.max.bytes": FETCH_MAX_BYTES + 512}
# A transaction left open by a dead producer is aborted by the coordinator after this; until then
# read_committed readers of its partitions wait at it. The broker sweeps for expired transactions
# every 10 s (transaction.abort.timed.out.transaction.cleanup.interval.ms), so the wait is 5-15 s.
TRANSACTION_TIMEOUT_MS = 5000
INIT_TRANSACTIONS_TIMEOUT_S = 30.0
# [semantics:partition-key] Which partition a key goes to. murmur2_random is the Java client's (and Kafka Streams',
# Connect's, most other clients') mapping: murmur2(key) % partitions, a random partition for a null key.
# librdkafka's own default, consistent_random, hashes with CRC32 and sends a key elsewhere, so a
# second producer with default settings (kcat, a confluent-kafka script) splits a user's records over
# two partitions, and two group members then handle them concurrently: per-key order is gone
# (tests/brokers/test_partitioner.py). QUEUEKIT_KAFKA_PARTITIONER=consistent_random makes the kit
# match librdkafka-default producers instead; every producer of a topic must agree.
PARTITIONER = os.environ.get("QUEUEKIT_KAFKA_PARTITIONER", "murmur2_random")


def _common(settings: Settings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": client_id,
        "logger": LOG,  # librdkafka's log lines become Python log records, not stderr noise
        "log.connection.close": False,  # idle connections closing is not news
    }


def producer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    return {
        **_common(settings, client_id),
        "enable.idempotence": True,  # the producer's own retries never duplicate or reorder a record
        "acks": "all",  # delivered = written by every in-sync replica (idempotence requires it anyway)
        "linger.ms": 5,  # wait up to 5 ms to batch; small, because forwards are waited for one by one
        # key -> partition: per-key order holds only while every producer of a topic maps a key to the
        # same partition. See PARTITIONER.
        "partitioner": PARTITIONER,
    }


def transactional_producer_config(settings: Settings, client_id: str, transactional_id: str,
                                  options: StackOptions = StackOptions()) -> dict[str, Any]:
    """``options.transaction_timeout_ms`` (default ``TRANSACTION_TIMEOUT_MS``)."""
    return {
        **producer_config(settings, client_id),
        # One id per consumer thread, stable across restarts of the same worker index: a new
        # instance's init_transactions() fences the old one (its commits fail) and aborts its leftovers.
        "transactional.id": transactional_id,
        # How long a transaction may stay open; a crashed producer's is aborted after this.
        "transaction.timeout.ms": options.transaction_timeout_ms or TRANSACTION_TIMEOUT_MS,
    }


def consumer_config(settings: Settings, group: str, client_id: str,
                    options: StackOptions = StackOptions()) -> dict[str, Any]:
    """``options``: ``session_timeout_ms``, ``max_poll_interval_ms``, ``transactional``."""
    transactional = options.transactional
    session_ms = options.session_timeout_ms or SESSION_TIMEOUT_MS
    return {
        **_common(settings, client_id),
        "group.id": group,  # one group per service: each service sees every record once (native fan-out)
        "auto.offset.reset": "earliest",  # a group without a committed offset starts at the log's beginning
        # Read only committed transactions: an aborted transaction's records are skipped, and a partition
        # is read up to its first still-open transaction (the last stable offset), never past it.
        # librdkafka's default too (Java's is read_uncommitted); what transactional mode relies on.
        "isolation.level": "read_committed",
        "enable.auto.offset.store": False,  # an offset is stored only by store_offsets(), after handling
        # Stored offsets are committed in the background ... unless transactional: then an offset is
        # committed only inside the transaction that holds its record's outputs (send_offsets_to_transaction).
        "enable.auto.commit": not transactional,
        "auto.commit.interval.ms": COMMIT_INTERVAL_MS,  # ... this often, and by close() / our on_revoke
        # Cooperative (incremental) rebalancing: a member joining or leaving moves only the partitions
        # that must move; the others keep consuming (no stop-the-world as with range/roundrobin).
        # Classic group protocol on purpose: with KIP-848's group.protocol=consumer the broker assigns
        # and owns the session timeout (45 s by default), so a SIGKILLed member would hold on far longer.
        "partition.assignment.strategy": "cooperative-sticky",
        # A member silent this long (SIGKILLed) is evicted and its uncommitted partitions go to the others.
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": min(500, session_ms // 3),  # members learn of a rebalance within 0.5 s
        # A member that does not call poll() for this long (a long handler) leaves the group itself.
        "max.poll.interval.ms": options.max_poll_interval_ms or MAX_POLL_INTERVAL_MS,
        "enable.partition.eof": False,
        **BOUNDED_FETCH,  # a compression bomb is refused at FETCH_MAX_BYTES inflated, never inflated further
    }


def reader_config(settings: Settings) -> dict[str, Any]:
    """A throwaway reader (dead letters): assign() only, never joins the group, never commits."""
    return {
        **_common(settings, READER_GROUP),
        "group.id": READER_GROUP,  # required by librdkafka; no join happens with assign(), no offsets stored
        "enable.auto.commit": False,  # reading the DLQ must not consume it
        "isolation.level": "read_committed",  # a transactional consumer's DLQ record counts once committed
        "enable.partition.eof": False,
    }


def producer(settings: Settings, client_id: str) -> Producer:
    return Producer(producer_config(settings, client_id))


def transactional_producer(settings: Settings, client_id: str, transactional_id: str,
                           options: StackOptions = StackOptions()) -> Producer:
    return Producer(transactional_producer_config(settings, client_id, transactional_id, options))


def consumer(settings: Settings, group: str, client_id: str, options: StackOptions = StackOptions()) -> Consumer:
    return Consumer(consumer_config(settings, group, client_id, options))


def replayer(settings: Settings, group: str) -> Consumer:
    """A brand-new group member that reads from the earliest offset and commits nothing."""
    return Consumer({**consumer_config(settings, group, group), "enable.auto.commit": False})


def reader(settings: Settings) -> Consumer:
    return Consumer(reader_config(settings))


def admin(settings: Settings) -> AdminClient:
    return AdminClient(_common(settings, "qk.admin"))
