"""The actors: one per service, each a thin adapter over ``queuekit.core.execute.process``.

An actor's single argument is the encoded envelope as a JSON string (see
``to_arg``). Delivery semantics, all Dramatiq's own:

* returns -> the message is acked AFTER the actor and the middleware ran
  (always late ack: Dramatiq has no ack-on-receipt mode);
* ``MalformedMessage`` / ``PermanentError`` -> listed in ``throws``: the
  Retries middleware fails the message at once -> ``.XQ``, no retry;
* anything else (``TransientError``, a bug) -> Retries re-enqueues it through
  ``.DQ`` with exponential backoff, and fails it to ``.XQ`` after
  ``max_retries`` (configured on the broker, see ``broker.py``).

The video pipeline is ``dramatiq.pipeline``: the Pipelines middleware sends the
next step after a step succeeds, with its return value appended as the last
argument (our ``upstream``). Tracking fan-out is one message per subscriber
actor, sent by the producer: Dramatiq has no publish/subscribe.
"""
from __future__ import annotations

import dramatiq
from dramatiq import Message

from queuekit.core.envelope import MalformedMessage
from queuekit.core.execute import PermanentError, process
from queuekit.core.worker_env import this_worker

from .broker import broker  # noqa: F401  sets the global broker the actors bind to
from .frames import from_arg
from .topology import queue_name

NEVER_RETRY = (MalformedMessage, PermanentError)  # Dramatiq's `throws`: fail at once, to .XQ


def to_arg(payload: bytes) -> str:
    """Bytes -> the actor's str argument; any bytes survive Dramatiq's JSON (invalid UTF-8 as surrogates)."""
    return payload.decode("utf-8", "surrogateescape")


# [handler:*] every actor runs through this adapter; Dramatiq acks, retries or fails by what it returns or raises
def _process(service: str, arg: str, upstream: dict | None = None) -> dict:
    if not isinstance(arg, str):  # JSON let the producer send any type; only a string is an envelope
        raise MalformedMessage(f"actor argument is {type(arg).__name__}, not an encoded envelope")
    if upstream is not None and not isinstance(upstream, dict):
        raise MalformedMessage(f"previous step's result is {type(upstream).__name__}, not an object")
    me = this_worker("dramatiq")
    # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger transaction:
    # a redelivery has no second effect
    outcome = process(from_arg(arg), service=service, worker=me.name, ledger=me.ledger, guard=me.options.guard,
                      upstream=upstream)
    return outcome.result


def _actor(service: str):
    return dramatiq.actor(actor_name=service, queue_name=queue_name(service), throws=NEVER_RETRY)


# [handler:signup] the actor a signup publish sends to
@_actor("signup")
def signup(envelope: str) -> None:
    _process("signup", envelope)


# [handler:video] a dramatiq.pipeline: each step's result is the next one's last argument
@_actor("video.transcode")
def transcode(envelope: str) -> dict:
    return _process("video.transcode", envelope)  # piped into thumbnail as its last argument


# [handler:video]
@_actor("video.thumbnail")
def thumbnail(envelope: str, upstream: dict) -> dict:
    return _process("video.thumbnail", envelope, upstream)


# [handler:video]
@_actor("video.notify")
def notify(envelope: str, upstream: dict) -> None:
    _process("video.notify", envelope, upstream)


# [handler:tracking] no fan-out in Dramatiq: one actor per subscriber, one message each
@_actor("tracking.analytics")
def analytics(envelope: str) -> None:
    _process("tracking.analytics", envelope)


# [handler:tracking]
@_actor("tracking.recommendations")
def recommendations(envelope: str) -> None:
    _process("tracking.recommendations", envelope)


# [topology:*] what one publish sends: the pipeline's first message for video, one message per subscriber for tracking
def entry_messages(workload: str, payload: bytes) -> list[Message]:
    """The Dramatiq messages one publish of ``workload`` sends."""
    arg = to_arg(payload)
    if workload == "signup":
        return [signup.message(arg)]
    if workload == "video":
        # each step gets the envelope; a pipeline is its first message carrying the rest in
        # options["pipe_target"], so enqueueing messages[0] is exactly what pipeline.run() does
        steps = dramatiq.pipeline([transcode.message(arg), thumbnail.message(arg), notify.message(arg)])
        return steps.messages[:1]
    if workload == "tracking":
        return [analytics.message(arg), recommendations.message(arg)]  # no native fan-out: one per subscriber
    raise ValueError(f"unknown workload {workload!r}")
