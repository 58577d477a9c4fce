"""The one call every framework adapter makes: ``process(payload, service=..., ...)``.

An adapter (Celery task, Dramatiq actor, Kafka consumer loop) decides nothing
about the message itself: it hands the bytes to ``process`` and maps what
comes back onto its framework's ack / retry / dead-letter:

    returns Outcome       -> ack / commit (``outcome.applied`` False means a duplicate was skipped)
    MalformedMessage      -> dead-letter with ``err.reason``, never retry
    PermanentError        -> dead-letter, never retry (a poison message; also RecursionError and
                             OverflowError from a handler or the ledger, which ``process`` converts)
    TransientError        -> retry (with backoff) and dead-letter when retries run out
    anything else         -> a bug or a crash in the handler; treat as transient

``process`` records every attempt in the ledger (outcome 'ok' | 'duplicate' |
'error'), applies the harness's fault directive from the envelope headers,
runs the service's handler, and applies the effect through the ledger's
idempotency guard. Services: "signup"; "video.transcode", "video.thumbnail",
"video.notify" (a pipeline: each step takes the previous step's result);
"tracking.analytics", "tracking.recommendations" (fan-out subscribers).
"""
from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from queuekit.core.envelope import DIRECTIVES, Envelope, MalformedMessage, decode, make_envelope
from queuekit.core.ledger import Ledger
from queuekit.core.worker_env import FAULTS_ENV, faults_enabled
from workloads import signup, tracking, video
from workloads.messages import Message, SignupRequested, TrackEvent, VideoUploaded

log = logging.getLogger("queuekit.faults")
_ignored_logged = False


class TransientError(Exception):
    """The attempt failed but a later one may succeed: retry it."""


class PermanentError(Exception):
    """No attempt will ever succeed: dead-letter it."""


@dataclass(frozen=True)
class Handler:
    """How one service handles its workload's message."""

    workload: str
    schema: str  # the only message schema this service accepts
    compute: Callable[..., dict]  # (msg) or (msg, upstream) -> payload; runs before the ledger transaction
    upstream: str | None = None  # pipeline: the service whose result ``compute`` takes as 2nd argument
    stage: Callable[[dict, signup.Outbox], Any] | None = None  # (compute's result, outbox): in the effect transaction
    consumes: str = ""  # the event it reads: its topic / stream in the log-based apps (queuekit/core/routes.py)


HANDLERS: dict[str, Handler] = {
    "signup": Handler("signup", SignupRequested.schema, signup.welcome_email, stage=signup.send_welcome_email,
                      consumes="signup"),
    "video.transcode": Handler("video", VideoUploaded.schema, video.transcode, consumes="video.uploaded"),
    "video.thumbnail": Handler("video", VideoUploaded.schema, video.thumbnail, upstream="video.transcode",
                               consumes="video.transcoded"),
    "video.notify": Handler("video", VideoUploaded.schema, video.notify, upstream="video.thumbnail",
                            consumes="video.thumbnailed"),
    "tracking.analytics": Handler("tracking", TrackEvent.schema, tracking.count_kind, consumes="tracking.events"),
    "tracking.recommendations": Handler("tracking", TrackEvent.schema, tracking.remember_last_seq,
                                        consumes="tracking.events"),
}


class Outcome(msgspec.Struct, frozen=True):
    """What ``process`` returns. A msgspec Struct, not a dataclass: built once per message, in ~0.1 µs where a
    frozen dataclass takes ~1 µs (0.5 µs with ``frozen``), of a Kafka record's ~10 µs."""

    service: str
    key: str
    message_id: str
    attempt: int  # 1 for the first attempt at (service, key)
    applied: bool  # False: an earlier delivery already applied this key (guard on)
    result: dict  # the handler's result (for a duplicate: the one recorded first); next pipeline step's input

    @property
    def status(self) -> str:
        return "applied" if self.applied else "duplicate"


def handler_for(service: str) -> Handler:
    try:
        return HANDLERS[service]
    except KeyError:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(HANDLERS)}") from None


@functools.cache  # HANDLERS is fixed; a Kafka consumer asks once per record
def next_service(service: str) -> str | None:
    """The pipeline step after ``service``, or None at the end / outside a pipeline."""
    for other, handler in HANDLERS.items():
        if handler.upstream == service:
            return other
    return None


def forward(env: Envelope, outcome: Outcome) -> Envelope:
    """The envelope for the next pipeline step, carrying ``outcome.result`` in headers["upstream"].

    For transports that pass results inside the message (Kafka topics); Celery
    chains and Dramatiq pipelines pass ``outcome.result`` as an argument instead.
    Keeps id, sent_at (so latency is end-to-end) and the fault directive.
    """
    headers = {**env.headers, "upstream": outcome.result}
    return make_envelope(env.body, headers, id=env.id, sent_at=env.sent_at)


def directives(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    """The headers with the harness's directives kept only when this worker honours them.

    Without ``QUEUEKIT_FAULTS=1`` (set by the harness's ``Stack.new_pool``) fault and
    idempotency directives are dropped here, and the first one seen is logged once.
    """
    if not headers or faults_enabled() or not any(name in headers for name in ("fault", "idempotency")):
        return headers  # no headers (most messages): nothing to honour or drop, and no environment lookup
    global _ignored_logged
    if not _ignored_logged:
        _ignored_logged = True
        log.warning("fault/idempotency directives in message headers are ignored: this worker was not "
                    "started by the harness with %s=1", FAULTS_ENV)
    return {k: v for k, v in headers.items() if k not in DIRECTIVES}


def crash_point(headers: Mapping[str, Any], service: str, attempt: int, point: str) -> None:
    """The harness's deterministic crash: the worker process dies at ``point`` on the first attempt.

    ``{"fault": "crash", "at": "after-effect"}``: after the effect is committed, before the
    adapter acks / commits / produces downstream — the window exactly-once has to cover.
    ``"after-output"``: called by an adapter after it produced its output, before it commits.
    """
    if headers:  # no headers (most messages): no directive, nothing to look up
        _crash_at(directives(headers), service, attempt, point)


def _crash_at(headers: Mapping[str, Any], service: str, attempt: int, point: str) -> None:
    """``crash_point`` on headers ``directives`` already filtered."""
    if headers.get("fault") == "crash" and headers.get("at") == point and attempt == 1 \
            and headers.get("service", service) == service:
        os._exit(CRASH_EXIT_CODE)  # no cleanup, no ack, no commit: like SIGKILL


CRASH_EXIT_CODE = 137
# Raised by a handler or the ledger for an input, these recur on every attempt (a recursion limit,
# an integer SQLite cannot store): dead-letter at once instead of retrying as if transient.
DETERMINISTIC = (RecursionError, OverflowError)


def apply_fault(headers: Mapping[str, Any], service: str, attempt: int) -> None:
    """Act out the harness's fault directive (see ``queuekit.core.envelope``) for this attempt."""
    _act_out(directives(headers), service, attempt)


def _act_out(headers: Mapping[str, Any], service: str, attempt: int) -> None:
    """``apply_fault`` on headers ``directives`` already filtered."""
    fault = headers.get("fault")
    if fault is None or headers.get("service", service) != service:
        return
    if fault == "fail-times" and attempt <= headers["n"]:
        raise TransientError(f"injected failure {attempt}/{headers['n']}")
    if fault == "always-fail":
        raise PermanentError("injected permanent failure")
    if fault == "cpu":
        video.burn(b"bench", headers["rounds"])  # CPU-bound work (the bench's cpu mode)
    if fault == "slow":
        # a real wait on purpose: the slowness IS the workload (back-pressure, kill-mid-task scenarios)
        time.sleep(headers["seconds"])


def process(
    payload: bytes | Envelope,
    *,
    service: str,
    worker: str,
    ledger: Ledger,
    guard: bool = True,
    upstream: Mapping[str, Any] | None = None,
) -> Outcome:
    """Handle one delivery of ``payload`` as ``service``; see the module docstring for what raises.

    ``worker`` names the worker in the ledger ("celery-0"). ``guard=False``
    turns the idempotency guard off (every delivery applies its effect); so
    does a message whose headers say ``"idempotency": "off"`` (the harness's
    way to show both sides of the duplicate-delivery scenario in one run) —
    that and fault directives only in a worker with faults enabled (``directives``).
    ``upstream`` is the previous pipeline step's ``Outcome.result``; when
    None it is read from headers["upstream"].
    """
    env = payload if isinstance(payload, Envelope) else decode(payload)  # MalformedMessage propagates
    handler = handler_for(service)
    if env.schema != handler.schema:
        raise MalformedMessage(f"schema {env.schema!r} is not handled by {service!r}")
    msg: Message = env.body
    key = msg.idempotency_key
    seq = getattr(msg, "seq", None)
    if upstream is None:
        upstream = env.headers.get("upstream")
    honoured = directives(env.headers)  # once per message: the fault, idempotency and crash directives below
    started_at = time.time()
    ticket = ledger.record_attempt(
        workload=handler.workload, service=service, key=key, message_id=env.id, worker=worker,
        seq=seq, user_id=msg.user_id, started_at=started_at,
    )
    try:
        if honoured:  # no directive without headers (every bench message, nearly every real one)
            _act_out(honoured, service, ticket.number)
        result = _compute(handler, service, msg, upstream)
        stage = handler.stage
        applied = ledger.apply_effect(
            service, key, workload=handler.workload, message_id=env.id, worker=worker, payload=result,
            seq=seq, user_id=msg.user_id, sent_at=env.sent_at, started_at=started_at,
            guard=guard and honoured.get("idempotency") != "off",
            on_claim=(lambda outbox: stage(result, outbox)) if stage else None,  # stages what compute made
        )
        if not applied:
            first = ledger.effect_payload(service, key)
            result = first if first is not None else result
    except DETERMINISTIC as exc:  # the same input fails the same way every time: not worth a retry
        ledger.finish_attempt(ticket.id, "error", f"{type(exc).__name__}: {exc}"[:1000])
        raise PermanentError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    except BaseException as exc:  # BaseException too: Dramatiq's time limit interrupts a handler that way
        ledger.finish_attempt(ticket.id, "error", f"{type(exc).__name__}: {exc}"[:1000])
        raise
    ledger.finish_attempt(ticket.id, "ok" if applied else "duplicate")
    if honoured:
        _crash_at(honoured, service, ticket.number, "after-effect")
    return Outcome(service, key, env.id, ticket.number, applied, result)


def _compute(handler: Handler, service: str, msg: Message, upstream: Mapping[str, Any] | None) -> dict:
    if handler.upstream is None:
        return handler.compute(msg)
    if upstream is None:
        raise PermanentError(f"{service} needs the result of {handler.upstream}")
    return handler.compute(msg, upstream)
