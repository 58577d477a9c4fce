"""Celery over Kafka: kombu's experimental ``confluentkafka://`` transport, configured for the same app.

The tasks, routes and queues are celery_app's own; only the broker URL, the
transport options and the settings a Kafka broker cannot honour change
(``make_app`` applies ``overrides`` when ``options.transport`` is
``"confluentkafka"``, which ``CeleryKafkaStack`` sets).

What the transport does (kombu 5.7 ``kombu/transport/confluentkafka.py``, a
virtual transport):

* a Celery queue is a topic; every worker consuming it joins ONE consumer group,
  ``<queue>-consumer-group``, subscribed to that topic only: parallelism <= partitions;
* records are produced without a key (``produce(topic, json)``) and flushed one by one;
* ack = ``consumer.commit()`` with no offsets: it commits the consumer's whole
  position, i.e. past every record already fetched, finished or not (the kit's
  transport replaces this: ``kafka_transport.QoS`` commits only up to the first
  record not yet acked);
* reject(requeue=False) = ack; reject(requeue=True) seeks back to the committed offset;
* exchanges and bindings live in the memory of each kombu connection (virtual
  "broker state"): direct and topic routing work inside one process, a fanout
  exchange does not (``supports_fanout`` is False: the publish returns and delivers
  nothing); queue arguments (x-dead-letter-exchange, x-max-length) are ignored.
"""
from __future__ import annotations

import logging
from typing import Any, Final

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions

TRANSPORT: Final = "confluentkafka"
SCHEME = "qkconfluentkafka"  # the broker URL's scheme: kombu's transport with unreadable records dead-lettered
STOCK_SCHEME = TRANSPORT  # kombu's own transport, as shipped
FETCH_MAX_BYTES = 4 * 1024 * 1024  # the most a fetched (compressed) batch may inflate to in the worker
SESSION_TIMEOUT_MS = 6000  # a SIGKILLed worker's partitions move after this (librdkafka's default is 45 s)
# librdkafka's own log lines ("%3|FAIL|… Connection refused" while a node is down) as Python log records, not
# raw stderr lines: the driver's runs put them in their clients log (queuekit/suite/client_logs.py)
RDKAFKA_LOG = logging.getLogger("celery_app.rdkafka")


def wanted(options: StackOptions) -> bool:
    return options.transport == TRANSPORT


def broker_url(settings: Settings, stock: bool = False) -> str:
    """kombu's transport with unreadable records dead-lettered (``kafka_transport``), not stock ``confluentkafka``
    (``stock``: kombu's own, for the workers of options.stock_framework, the framework-drops scenario's stock run).
    It takes ONE host:port as bootstrap.servers; a cluster's nodes become a ";"-joined failover list (any one
    node's metadata names the whole cluster)."""
    from . import kafka_transport  # noqa: F401 - imported for its registration of SCHEME with kombu

    return ";".join(f"{STOCK_SCHEME if stock else SCHEME}://{server}" for server in settings.kafka_bootstrap.split(","))


def overrides(options: StackOptions) -> dict[str, Any]:
    """Celery settings that differ from the RabbitMQ app's (make_app applies them last)."""
    return {
        # [topology:*@celery_kafka] kombu's transport makes one topic per queue with num_partitions partitions: no
        # exchange, no DLX
        "broker_transport_options": {
            "num_partitions": options.partitions,  # kombu's default is 1 partition per topic
            "replication_factor": 1,
            "wait_time_seconds": 0.2,  # poll() timeout per queue: the worker cycles its queues one poll at a time
            "polling_interval": 0.05,  # kombu sleeps this long when every queue was empty (default 1 s)
            # [semantics:offset-commit@celery_kafka] kombu's ack (after the task: acks_late) commits the consumer's
            # whole position, past records fetched and not yet done: a crash loses those (crash-mid-task-prefetch)
            "kafka_consumer_config": {
                "session.timeout.ms": options.session_timeout_ms or SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 1000,
                # Bounded decompression: a compressed batch is inflated up to receive.message.max.bytes only
                # (librdkafka's default: 100 MB); past it the client reports _BAD_COMPRESSION for the record
                # and kafka_transport dead-letters it by coordinates.
                "fetch.max.bytes": FETCH_MAX_BYTES, "receive.message.max.bytes": FETCH_MAX_BYTES + 512,
                # [semantics:prefetch@celery_kafka] librdkafka keeps fetching in the background: Celery's prefetch
                # limits what it takes from poll(), not what the client already holds; it is the commit that
                # decides what a crash loses.
                **({"max.poll.interval.ms": options.max_poll_interval_ms} if options.max_poll_interval_ms else {}),
            },
            # [semantics:partition-key@celery_kafka] kombu's transport produces every task without a key: one user's
            # records spread over the partitions, so per-key order is not kept
            "kafka_producer_config": {"acks": "all", "enable.idempotence": True},  # flushed after each record
            "kafka_common_config": {"logger": RDKAFKA_LOG},  # producer, consumer and admin client alike
        },
        # No fanout on this transport: the pidbox (remote control) and the events exchange would go nowhere.
        "worker_enable_remote_control": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }
