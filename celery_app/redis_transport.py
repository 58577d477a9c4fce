"""kombu's Redis transport with unreadable list items dead-lettered instead of killing the worker.

Stock kombu 5.7 (``redis.Channel._brpop_read``) BRPOPs an item and decodes it inside the
worker's event loop: an item that is not kombu's JSON message (``not json {``, a JSON list, an
object without ``properties.delivery_tag``, a body that does not decode) raises there, Celery
logs "Unrecoverable error" and the worker process exits, and the item, already popped, is gone
(``tests/stacks/test_celery_redis.py``). Here each item is checked the way
celery_kafka's records are (``kafka_transport.record_problem``, kombu's own ``Channel.Message``
included) before kombu delivers it; one it cannot read is pushed, with the reason, onto its
queue's ``.dlq`` list and the worker carries on. Everything else is kombu's, unchanged.
``redis.overrides`` selects these classes with Celery's ``broker_transport``; the URL keeps its
``redis://`` / ``sentinel://`` scheme.
"""
from __future__ import annotations

import base64
import json
import logging
import uuid
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str

from . import topology
from .kafka_transport import record_problem

log = logging.getLogger("celery_app.redis_transport")
ALIAS, SENTINEL_ALIAS = "qkredis", "qksentinel"  # Celery's broker_transport (the URL's scheme stays kombu's)
TRUNCATED_BYTES = 64 * 1024


class ReadableItems:
    """The BRPOP read of ``kombu.transport.redis.Channel._brpop_read``, with the item checked first."""

    client: Any  # kombu's Channel.client: redis-py, prefixed with global_keyprefix (annotation only)

    def _brpop_read(self, **options):
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # kombu's: reconnect on the next iteration
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            problem = record_problem(item, channel=self)
            if problem is not None:  # popped already: its dead letter is the only place it can end
                self._dead_letter_item(dest, item, problem)
                return True
            # kombu's delivery, unchanged: its QoS copies the message into the unacked hash first
            self.connection._deliver(json.loads(bytes_to_str(item)), dest)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _dead_letter_item(self, queue: str, item: bytes, reason: str) -> None:
        """LPUSH the raw item, in kombu's message format, onto ``<queue>.dlq`` with the reason in a header."""
        log.warning("dead-lettering an unreadable item from %s: %s", queue, reason[:300])
        raw = bytes(item[:TRUNCATED_BYTES])
        target = topology.dlq_name(topology.service_of_queue(queue)) if queue.startswith(topology.PREFIX) \
            else f"{queue}.dlq"
        message = {"body": base64.b64encode(raw).decode(), "content-type": "application/octet-stream",
                   "content-encoding": "binary",
                   "headers": {topology.REASON_HEADER: reason[:1000], "x-queuekit-queue": queue,
                               **({"x-queuekit-truncated-from": len(item)} if len(item) > TRUNCATED_BYTES else {})},
                   "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4()), "delivery_mode": 2,
                                  "delivery_info": {"exchange": "", "routing_key": target}}}
        self.client.lpush(target, json.dumps(message))  # the client adds the stack's key prefix


class Channel(ReadableItems, kombu_redis.Channel):
    pass


class SentinelChannel(ReadableItems, kombu_redis.SentinelChannel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
TRANSPORT_ALIASES[SENTINEL_ALIAS] = f"{__name__}:SentinelTransport"
