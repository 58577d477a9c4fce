"""confluent-kafka configurations of the share-group stack: where its delivery semantics are decided.

Share consumer (KIP-932, preview in confluent-kafka 2.16): explicit
acknowledgement — each record is ACCEPTed, RELEASEd or REJECTed by our code
(``acks.py``) and the acknowledgements go to the broker with ``commit_sync``.
Implicit mode would ACCEPT a poll's records on the next poll whatever the
handler did, so a failure could not be retried or dead-lettered per record.

The producer config is the Kafka stack's (duplicated on purpose: app packages
do not import each other): idempotent, ``acks=all``, Java-compatible key hash.
"""
from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions

from .acks import records_per_poll
from .topology import PREFIX

LOG = logging.getLogger("kafka_share_app.rdkafka")
MAX_POLL_INTERVAL_MS = 300_000  # librdkafka's default


def _common(settings: Settings, client_id: str) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka_bootstrap, "client.id": client_id, "logger": LOG,
            "log.connection.close": False}


def producer(settings: Settings, client_id: str) -> Producer:
    return Producer({
        **_common(settings, client_id),
        "enable.idempotence": True,  # the producer's retries never duplicate or reorder a record
        "acks": "all",  # delivered = written by every in-sync replica
        "linger.ms": 5,
        # [semantics:partition-key] the key picks the partition as the Java client maps it; a share group still hands
        # a partition's records to any member, so the key keeps no order here
        "partitioner": "murmur2_random",  # key -> partition as the Java client maps it
    })


FETCH_MAX_BYTES = 4 * 1024 * 1024  # the most a fetched (compressed) batch may inflate to in the worker


def share_consumer_config(settings: Settings, group: str, client_id: str, options: StackOptions) -> dict[str, Any]:
    return {
        **_common(settings, client_id),
        "group.id": group,  # a share group per service: members share its records; another group sees them all
        # Our code acknowledges every record (ACCEPT / RELEASE / REJECT); poll() refuses to run while a
        # record of the previous poll is unacknowledged.
        "share.acknowledgement.mode": "explicit",
        # [semantics:prefetch] Records acquired (locked to this member) per poll: ``prefetch`` (``batch_records``
        # when acknowledged per batch, acks.py). What one member acquires no other member can take until it is
        # acknowledged or its lock expires, so a large batch starves the others. librdkafka calls this limit
        # best-effort.
        "max.poll.records": records_per_poll(options),
        # A member that does not poll for this long leaves the group (its acquired records are released).
        "max.poll.interval.ms": options.max_poll_interval_ms or MAX_POLL_INTERVAL_MS,
        # session.timeout.ms / heartbeat: set on the GROUP by the broker (admin.py), not by the client.
        # Bounded decompression: a compressed batch is inflated up to receive.message.max.bytes only
        # (librdkafka's default: 100 MB); past it the client reports _BAD_COMPRESSION for the record.
        "fetch.max.bytes": FETCH_MAX_BYTES, "receive.message.max.bytes": FETCH_MAX_BYTES + 512,
    }


def share_consumer(settings: Settings, group: str, client_id: str, options: StackOptions) -> ShareConsumer:
    return ShareConsumer(share_consumer_config(settings, group, client_id, options))


def reader(settings: Settings) -> Consumer:
    """A throwaway reader (dead letters, replay): assign() only, never joins a group, never commits."""
    return Consumer({**_common(settings, f"{PREFIX}reader"), "group.id": f"{PREFIX}reader", "enable.auto.commit": False,
                     "enable.partition.eof": False})


def admin(settings: Settings) -> AdminClient:
    return AdminClient(_common(settings, f"{PREFIX}admin"))
