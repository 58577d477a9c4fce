"""The same actors on Dramatiq's RedisBroker (the dramatiq_redis stack): settings, key names, checked frames.

What RedisBroker does (dramatiq 2.2, ``brokers/redis.py`` + its ``dispatch.lua``; every command is one
Lua call, so each step below is atomic on the primary):

* enqueue: ``HSET <ns>:Q.msgs id data`` + ``RPUSH <ns>:Q id`` (``id`` = ``options.redis_message_id``,
  a fresh uuid per enqueue); a delayed message goes to ``Q.DQ`` with ``options.eta``;
* fetch: ``LPOP`` up to prefetch ids into the worker's ack set ``<ns>:__acks__.<broker id>.Q`` and return
  the data (not the ids); every call also stamps the worker's heartbeat in ``<ns>:__heartbeats__``;
* ack: ``SREM`` the ack set + ``HDEL`` the data; nack: the data moves to ``<ns>:Q.XQ`` (a sorted set by
  time) + ``Q.XQ.msgs``, kept ``dead_message_ttl`` (7 days);
* maintenance, on ``MAINTENANCE_CHANCE`` in a million commands on a queue: the ack sets of workers
  whose heartbeat is older than ``heartbeat_timeout`` go back to the tail of that queue (dramatiq #77;
  before it a fixed ~7-day deadline, #64 / #70). Nothing takes a message from a live worker: its consumer of
  ``Q.DQ`` keeps polling (so heartbeating) while an actor runs, however long.

The kit's additions (the RabbitMQ broker's, in Redis's terms): every fetched frame is checked
(``frames.checked_message``, parsed once) and must name its own hash field as ``redis_message_id``; a bad one is
nacked to ``Q.XQ`` with its reason in ``<ns>:Q.XQ.reasons``, as is a failed message (its exception).
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from uuid import uuid4

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from queuekit.core.config import Settings, settings
from queuekit.core.options import StackOptions
from queuekit.core.redis_client import connect

from . import frames
from .middleware import kit_middleware

log = logging.getLogger("dramatiq_app.redis_broker")

NAMESPACE = "dramatiq_redis"  # the stack's name: its keys are <install prefix>dramatiq_redis:…
PRODUCER = f"{NAMESPACE}-producer"  # the driver's broker: it heartbeats on enqueue too, but consumes nothing
# [semantics:ack-timing] a dead worker's fetched messages go back after 10 s without its heartbeat (Dramatiq: 60 s):
# the crash scenarios settle in seconds; a worker silent longer (paused, cut off, a slow failover) has its messages
# run a second time (the ledger's idempotency key keeps one effect)
HEARTBEAT_TIMEOUT_MS = 10_000
# [semantics:ack-timing] maintenance (the requeue above) on 1 command in 10 per queue, not 1 in 1,000: idle consumers
# poll every ~50 ms, so a dead worker's messages are back within a second of the timeout
MAINTENANCE_CHANCE = MAINTENANCE_SCALE // 10


def namespace(config: Settings) -> str:
    return f"{config.redis_prefix}{NAMESPACE}"  # Dramatiq joins it with ":": qk:dramatiq_redis:<queue>


def reasons_key(ns: str, queue: str) -> str:
    return f"{ns}:{q_name(queue)}.XQ.reasons"  # the kit's: dead-letter id -> why (Dramatiq keeps no reason)


class _CheckedConsumer(_RedisConsumer):
    """Dramatiq's consumer with each fetched frame checked before the worker sees it."""

    def __next__(self):
        try:
            return self._next()
        except redis.ConnectionError as exc:  # as Dramatiq's own consumer: the worker restarts it
            raise ConnectionClosed(exc) from None

    def _next(self):
        while True:
            if self.message_cache:
                redis_id, message, problem = self.message_cache.pop(0)
                if message is not None:  # checked, and parsed once for the check and for Dramatiq
                    self.queued_message_ids.add(message.message_id)
                    return MessageProxy(message)
                self._dead_letter(redis_id, problem or "unreadable frame")
                continue
            if self.outstanding_message_count < self.prefetch:
                fetched = self.broker.do_fetch(self.queue_name, self.prefetch - self.outstanding_message_count)
                if fetched:
                    self.misses, self.message_cache = 0, self._checked(fetched)
                    continue
            self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
            time.sleep(backoff_ms / 1000)  # long-polls up to the worker's timeout, as Dramatiq's own
            return None

    def _checked(self, fetched: list[bytes]) -> list[tuple[str, Message | None, str | None]]:
        """(hash field, message or None, problem) per fetched frame. The field is the frame's own
        ``redis_message_id`` when that names this frame in our ack set; otherwise (a stranger's frame) it is
        looked up there. Each frame is parsed once (``frames.checked_message``), for the check and for Dramatiq."""
        ns, client = self.broker.namespace, self.broker.client
        msgs, acks = f"{ns}:{self.queue_name}.msgs", f"{ns}:__acks__.{self.broker.broker_id}.{self.queue_name}"
        checked = [self._check(data) for data in fetched]
        claims = [_claimed_id(data, message) for data, (message, _) in zip(fetched, checked, strict=True)]
        named = [c for c in claims if c is not None]
        stored = dict(zip(named, client.hmget(msgs, named), strict=True)) if named else {}
        held = dict(zip(named, client.smismember(acks, named), strict=True)) if named else {}
        out, taken, unknown = [], set(), []
        for data, claim, (message, problem) in zip(fetched, claims, checked, strict=True):
            if claim is not None and claim not in taken and held.get(claim) and stored.get(claim) == data:
                taken.add(claim)
                out.append((claim, message, problem))
            else:
                unknown.append(data)
        if unknown:  # the frame lies about its id: find its real field among what we hold
            ours = [m.decode() for m in client.smembers(acks) if m.decode() not in taken]
            by_data: dict[bytes, list[str]] = {}
            for field, value in zip(ours, client.hmget(msgs, ours) if ours else [], strict=True):
                by_data.setdefault(value, []).append(field)
            for data in unknown:
                fields = by_data.get(data) or []
                if not fields:  # cannot happen while the fetch script is Dramatiq's: logged, left in the ack set
                    log.error("a fetched frame is not in this worker's ack set: left for maintenance")
                    continue
                problem = self._check(data)[1]  # its own fault first, if any
                out.append((fields.pop(), None, problem or "option 'redis_message_id' does not name this message"))
        return out

    def _check(self, data: bytes) -> tuple[Message | None, str | None]:
        try:
            return frames.checked_message(data, self.queue_name, self.broker)
        except Exception as exc:  # noqa: BLE001 - the check must not take the consumer thread down
            return None, f"unreadable frame: {type(exc).__name__}: {str(exc)[:200]}"

    def _dead_letter(self, redis_id: str, problem: str) -> None:
        log.warning("dead-lettering a frame from %s: %s", self.queue_name, problem[:300])
        self.broker.client.hset(reasons_key(self.broker.namespace, self.queue_name), redis_id, problem[:1000])
        self.broker.do_nack(self.queue_name, redis_id)  # [semantics:dead-letter] Dramatiq's own move to Q.XQ

    # [semantics:dead-letter] a failed message keeps its exception as the reason, then Dramatiq's nack moves it to
    # Q.XQ (stock keeps only the previous attempt's traceback, or none)
    def nack(self, message) -> None:
        exc = message._exception
        why = "".join(traceback.format_exception(exc, limit=30)) if exc else message.options.get("traceback")
        self.broker.client.hset(reasons_key(self.broker.namespace, self.queue_name),
                                message.options["redis_message_id"], (why or "failed by a middleware")[-4000:])
        super().nack(message)


def _claimed_id(data: bytes, message: Message | None) -> str | None:
    """The hash field the frame names as its own (``options.redis_message_id``); a frame that failed its check
    is parsed again here, only for this."""
    if message is not None:
        claim = message.options.get("redis_message_id")
    else:
        try:
            claim = json.loads(data).get("options", {}).get("redis_message_id")
        except (ValueError, RecursionError, AttributeError):
            return None
    return claim if isinstance(claim, str) else None


class KitRedisBroker(RedisBroker):
    def __init__(self, *, stock: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.stock = stock  # options.stock_framework: Dramatiq's own consumer (the framework-drops scenario)

    @property
    def consumer_class(self):
        return _RedisConsumer if self.stock else _CheckedConsumer


def make_redis_broker(options: StackOptions, config: Settings | None = None, name: str = "dramatiq_redis") -> KitRedisBroker:
    """``name`` starts the broker id, so ack sets and heartbeats say which worker holds what."""
    config = config or settings()
    broker = KitRedisBroker(
        client=connect(config),  # the kit's node, an external URL, or the primary found through Sentinel
        namespace=namespace(config),  # every key under the stack's prefix (Dramatiq's default is "dramatiq")
        middleware=kit_middleware(options),
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
        stock=options.stock_framework,
    )
    broker.broker_id = f"{name}@{uuid4().hex[:8]}"  # a restarted worker is a new id: its old ack sets are a dead one's
    return broker
