"""What one consumer of a group does: read new entries, claim abandoned ones, handle, settle.

Each consumer is a thread (``worker.py``) with its own redis-py client, a consumer named
``<worker>.<service>.<slot>`` in group ``<service>`` on the service's source stream:

    loop: claim what dead / slow consumers left (claims.py), else XREADGROUP > (acks.read_new)
          for each entry: handle it, then settle it (acks.settle: outputs + XACK in one EXEC)

Retries happen in place: a failed attempt is retried by the same consumer after
``backoff_ms * 2**(attempt-1)`` while the entry stays pending under its name (the group's other
consumers go on; this consumer's next entries wait). After ``max_retries`` retries, or at once for a
malformed entry or a permanent error, the entry is dead-lettered: copied to ``<service>.dlq`` with its
reason, and acknowledged, in one EXEC.

Whatever a producer put in an entry (any fields, any bytes) ends here as an effect or a dead letter.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from queuekit.core.envelope import MalformedMessage, decode, encode
from queuekit.core.execute import PermanentError, crash_point, forward, process
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.timings import HOP_EVERY, delivery

from .acks import read_new, settle
from .claims import Claims
from .topology import FIELD
from .topology import StreamRoute as Route

log = logging.getLogger("redis_streams_app.consumers")
RECONNECT_S = 0.5  # between attempts while Redis is unreachable
BLOCK_MS = 500  # XREADGROUP BLOCK: how often an idle loop looks at its stop flag and for claimable entries
MAX_FIELDS = 16  # an entry of ours has one field; more than this is refused before anything is read of it
MAX_ENTRY_BYTES = 1024 * 1024  # field names and values together; the envelope's own limit (256 KiB) is checked after
MAX_REASON = 1000  # characters of a dead letter's reason
MAX_DEAD_LETTER_BYTES = 512 * 1024  # a dead letter keeps the payload whole up to here
TRUNCATED_BYTES = 64 * 1024  # what an oversize dead letter keeps


@dataclass
class Service:
    """One consumer thread's world."""

    route: Route
    client: Any  # a redis-py client of the primary (core/redis_client.connect), this thread's own
    consumer: str  # its name in the group: <worker>.<service>.<slot>
    ledger: Ledger
    worker: str  # the ledger's worker name (QUEUEKIT_WORKER_NAME)
    options: StackOptions
    claims: Claims


def consume(svc: Service, stop: threading.Event) -> None:
    """Until ``stop``: claimed entries first, then new ones; one at a time, in the order read. Redis gone (a
    restart, a failover): wait and go on; redis-py reconnects on the next command (through Sentinel in the
    cluster topology: to the new primary). An entry in hand when the link broke stays pending: claimed again."""
    import redis

    while not stop.is_set():
        try:
            consume_once(svc, stop)
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as exc:  # a demoted primary: read-only
            log.warning("%s: Redis unavailable (%s: %s); retrying in %.1f s", svc.consumer, type(exc).__name__,
                        exc, RECONNECT_S)
            stop.wait(RECONNECT_S)


def consume_once(svc: Service, stop: threading.Event) -> None:
    """One batch: claimed entries if any are due, else up to ``prefetch`` new ones (waiting up to BLOCK_MS)."""
    batch: list[tuple[bytes, dict, int]] = []
    if svc.claims.due() and not svc.options.early_ack:  # NOACK entries are never pending: nothing to claim
        batch = svc.claims.claim(svc.client, svc.options.prefetch)
    if not batch:
        batch = [(i, f, 1) for i, f in read_new(svc.client, svc.route, svc.consumer, svc.options.prefetch,
                                                 BLOCK_MS, svc.options.early_ack)]
    for entry_id, fields, deliveries in batch:
        if stop.is_set():  # the rest of a prefetched batch stays pending: claimed after min_idle_ms
            return
        if svc.claims.over_limit(deliveries):
            dead_letter(svc, entry_id, fields, f"delivered {deliveries} times (XPENDING delivery count), over "
                                               f"{svc.claims.limit}: its consumers died or outlived the lease")
            continue
        appended_ms = int(entry_id.split(b"-", 1)[0])  # the id's first part: the server's append time in ms
        if appended_ms % HOP_EVERY:
            handle(svc, entry_id, fields, stop)
            continue
        # bench hops (core.timings): entries appended in 1 ms of every HOP_EVERY note their append and arrival
        with delivery(appended_ms / 1000):
            handle(svc, entry_id, fields, stop)


# [handler:*] one entry: its envelope field, decoded, processed (retried in place), then forwarded / dead-lettered
def handle(svc: Service, entry_id: bytes, fields: dict, stop: threading.Event) -> None:
    try:
        env = decode(envelope_of(fields))  # MalformedMessage: size, depth, schema (core/envelope.py)
    except MalformedMessage as exc:
        dead_letter(svc, entry_id, fields, reason(exc))
        return
    attempt = 1
    while True:
        try:
            # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger
            # transaction: an entry claimed and handled again has no second effect
            outcome = process(env, service=svc.route.service, worker=svc.worker, ledger=svc.ledger,
                              guard=svc.options.guard)
        except (MalformedMessage, PermanentError) as exc:  # never retried
            dead_letter(svc, entry_id, fields, reason(exc))
            return
        except Exception as exc:  # TransientError or a crash in the handler: retry in place, then dead-letter
            if attempt > svc.options.max_retries:
                dead_letter(svc, entry_id, fields, reason(exc))
                return
            # [semantics:retries] in place, after backoff_ms * 2**(attempt-1): the entry stays pending under this
            # consumer meanwhile (a backoff longer than min_idle_ms would let another consumer claim it)
            if stop.wait(svc.options.backoff_ms * 2 ** (attempt - 1) / 1000):
                return  # stopping: left pending, claimed by another consumer after min_idle_ms
            attempt += 1
            continue
        outputs = [(svc.route.sink, {FIELD: encode(forward(env, outcome))})] if svc.route.sink else []
        crash_point(env.headers, svc.route.service, outcome.attempt, "after-output")  # harness fault only
        settle(svc.client, svc.route, entry_id, outputs, acked=svc.options.early_ack)
        return


def envelope_of(fields: dict) -> bytes:
    """The entry's envelope bytes; an entry that is not ours (no such field, too many, too big) is malformed.
    Other fields are ignored (and a field given twice reads as its last value: redis-py's reply parsing)."""
    if len(fields) > MAX_FIELDS:
        raise MalformedMessage(f"entry of {len(fields)} fields, over {MAX_FIELDS}")
    size = sum(len(k) + len(v) for k, v in fields.items())
    if size > MAX_ENTRY_BYTES:
        raise MalformedMessage(f"entry of {size} bytes, over the {MAX_ENTRY_BYTES}-byte limit")
    if FIELD not in fields:
        names = ", ".join(repr(k)[:40] for k in list(fields)[:5])
        raise MalformedMessage(f"no {FIELD.decode()!r} field (fields: {names})")
    return fields[FIELD]


# [semantics:dead-letter] copied to <service>.dlq with its reason, and acknowledged, in one MULTI/EXEC
def dead_letter(svc: Service, entry_id: bytes, fields: dict, why: str) -> None:
    """The dead letter: the envelope bytes (or, for an entry that is not ours, every field rendered), the reason,
    where it came from. Too big for a dead letter: truncated, saying so."""
    payload = fields[FIELD] if list(fields) == [FIELD] else render(fields)
    letter = {b"payload": payload, b"reason": why[:MAX_REASON], b"service": svc.route.service,
              b"source": svc.route.source, b"source-id": entry_id}
    if len(payload) > MAX_DEAD_LETTER_BYTES:
        letter.update({b"payload": payload[:TRUNCATED_BYTES], b"truncated-from": f"{len(payload)} bytes"})
    settle(svc.client, svc.route, entry_id, [(svc.route.dlq_topic, letter)], acked=svc.options.early_ack)
    log.warning("dead-lettered %s %s for %s: %s", svc.route.source, entry_id, svc.route.service, why[:200])


def render(fields: dict) -> bytes:
    """Every field of an entry that is not ours, ``name: value`` per line (bytes as they are)."""
    return b"\n".join(bytes(k) + b": " + bytes(v) for k, v in fields.items())


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
