"""Frames a Dramatiq consumer receives, checked before Dramatiq's worker sees them.

Stock Dramatiq 2.x trusts the message dict it decodes. Given what any producer can put on a queue:

* ``options.retries`` / ``max_retries`` as strings: the Retries middleware's comparison raises after
  the actor ran, and the message is acked with no dead letter (it vanishes);
* ``options`` as a list, or ``throws`` as a list of names: a worker thread dies, and the message it
  held stays unacked on that connection for good;
* ``max_retries``, ``time_limit``, ``max_age``, ``on_failure``…: the producer, not the worker, picks
  the retry policy, the time limit or a callback actor;
* an ``eta`` far ahead: held unacked in the worker's memory until then;
* wrong arity or an unknown actor fail inside the worker, with the traceback as the only record.

``checked_message`` parses a frame once and says why it must not reach the worker; the broker's
consumer (``broker._DeadLetterWithReason``; on Redis ``redis_broker._CheckedConsumer``) then publishes
it, truncated if huge, to the queue's ``.XQ`` with
the reason in ``REASON_HEADER`` and acks it. Allowed options are those Dramatiq and our own
producer set: ``retries``, ``traceback``, ``requeue_timestamp``, ``eta``, ``pipe_target`` (only in the shape
of the kit's own pipeline: the workload's next step, with the same envelope), ``pipe_ignore`` (only False).
"""
from __future__ import annotations

import inspect
import json
import time
from functools import lru_cache
from typing import Any

import msgspec
from dramatiq import Message
from dramatiq.common import q_name
from dramatiq.errors import ActorNotFound

from workloads import WORKLOADS

MAX_FRAME_BYTES = 1024 * 1024  # our messages are < 2 KiB; bigger frames are dead-lettered unread
TRUNCATED_BYTES = 64 * 1024  # what the dead letter keeps of a frame over MAX_FRAME_BYTES
MAX_ETA_MS = 3600 * 1000  # a retry waits for its backoff, never an hour (it is held unacked meanwhile)
MAX_PIPE_DEPTH = 4  # video is a 3-step pipeline
REASON_HEADER = "x-queuekit-reason"  # on a frame dead-lettered by the consumer (not a Dramatiq message)
FIELDS: dict[str, type] = {"queue_name": str, "actor_name": str, "args": list, "kwargs": dict, "options": dict,
                           "message_id": str, "message_timestamp": int}
OPTIONAL_FIELDS = ("message_id", "message_timestamp")  # Dramatiq fills them in
OPTIONS: dict[str, tuple[type, ...]] = {
    "retries": (int,), "traceback": (str, type(None)), "requeue_timestamp": (int,), "eta": (int, float, type(None)),
    "pipe_target": (dict, type(None)), "pipe_ignore": (bool,),
    # RedisBroker's name of the message in its queue hash (dramatiq_redis: its consumer checks that it names the
    # frame's own field, redis_broker.py); ignored on RabbitMQ
    "redis_message_id": (str,),
}


@lru_cache(maxsize=256)
def _misfit(fn, positional: int, keywords: tuple[str, ...]) -> str | None:
    """Why ``positional`` arguments and these keyword names do not fit actor function ``fn`` (None: they do).
    Whether a call binds depends on its shape alone, so each shape is bound once: ``inspect.signature``
    costs ~60 µs and ``bind`` a few more, against ~230 µs for a whole noop message. Bounded: a stranger
    sending ever new keyword names evicts old shapes, it does not grow the cache."""
    try:
        inspect.signature(fn).bind(*range(positional), **dict.fromkeys(keywords))
    except TypeError as exc:
        return str(exc)
    return None


def checked_message(body: bytes, queue_name: str, broker) -> tuple[Message | None, str | None]:
    """(the frame as Dramatiq's Message, None), or (None, why it must not reach the worker).

    Two paths, one verdict (as ``queuekit.core.envelope.decode``): a well-formed frame's shape is read by
    msgspec's typed decoder in one C pass; a frame it refuses is parsed again by ``json`` and checked
    field by field, which names the reason. Either way the content checks below run on the same values,
    and the message is built from them as ``Message.decode`` builds it (args a tuple): parsed once for
    the checks and for Dramatiq. In noop the two parses and the field loop were ~5 µs of a ~230 µs message."""
    if len(body) > MAX_FRAME_BYTES:
        return None, f"frame of {len(body)} bytes, over the {MAX_FRAME_BYTES}-byte limit"
    queue = q_name(queue_name)
    doc = _typed_fields(body)
    if doc is not None:
        problem = _content_problem(doc, queue, broker, 0)
    else:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None, "not a Dramatiq message: not UTF-8 JSON"
        problem = message_problem(doc, queue, broker)
    if problem is not None:
        return None, problem
    return Message(**{**doc, "args": tuple(doc["args"])}), None


class _Frame(msgspec.Struct, forbid_unknown_fields=True):
    """``FIELDS`` as a typed structure (msgspec refuses a bool where an int is declared, as the checks do)."""

    queue_name: str
    actor_name: str
    args: list
    kwargs: dict[str, Any]
    options: dict[str, Any]
    message_id: str | msgspec.UnsetType = msgspec.UNSET  # OPTIONAL_FIELDS: left out, Dramatiq fills them in
    message_timestamp: int | msgspec.UnsetType = msgspec.UNSET


_FRAME = msgspec.json.Decoder(_Frame)
TYPED_MAX_BRACKETS = 64  # a kit frame has ~10; more goes the checked way (json's own depth limit decides)


def _typed_fields(body: bytes) -> dict | None:
    """The frame's fields when msgspec reads them as ``FIELDS`` says, else None (the checked path decides)."""
    if body.count(b"[") + body.count(b"{") > TYPED_MAX_BRACKETS:
        return None
    try:
        frame = _FRAME.decode(body)
    except msgspec.MsgspecError:  # not JSON, a wrong type, a stranger field: the checked path names it
        return None
    return {name: value for name, value in msgspec.structs.asdict(frame).items() if value is not msgspec.UNSET}


def message_problem(doc, queue: str | None, broker, depth: int = 0) -> str | None:
    """Check one message dict (``queue``: the canonical queue it must belong to; None: its actor's)."""
    if not isinstance(doc, dict):
        return f"not a Dramatiq message: {type(doc).__name__}, not an object"
    for name in doc:
        if name not in FIELDS:
            return f"unknown field {str(name)[:40]!r}"
    for name, kind in FIELDS.items():
        if name not in doc:
            if name in OPTIONAL_FIELDS:
                continue
            return f"missing field {name!r}"
        if not isinstance(doc[name], kind) or isinstance(doc[name], bool):
            return f"field {name!r} is {type(doc[name]).__name__}, not {kind.__name__}"
    return _content_problem(doc, queue, broker, depth)


def _content_problem(doc: dict, queue: str | None, broker, depth: int) -> str | None:
    """What is wrong with a message of the right shape: its actor, its queue, its arguments, its options."""
    try:
        actor = broker.get_actor(doc["actor_name"])
    except ActorNotFound:
        return f"unknown actor {doc['actor_name'][:100]!r}"
    if q_name(doc["queue_name"]) != actor.queue_name or (queue is not None and actor.queue_name != queue):
        return f"actor {actor.actor_name!r} does not belong on queue {doc['queue_name'][:100]!r}"
    piped = () if depth == 0 or doc["options"].get("pipe_ignore") else (None,)  # Pipelines appends a result
    misfit = _misfit(actor.fn, len(doc["args"]) + len(piped), tuple(doc["kwargs"]))
    if misfit is not None:
        return f"arguments do not fit actor {actor.actor_name!r}: {misfit}"
    return options_problem(doc["options"], broker, depth, actor.actor_name, doc["args"])


def next_step(actor_name: str) -> str | None:
    """The pipeline step after ``actor_name`` (actors are named by service), None for every other actor."""
    for spec in WORKLOADS.values():
        if spec.shape == "pipeline" and actor_name in spec.services[:-1]:
            return spec.services[spec.services.index(actor_name) + 1]
    return None


def options_problem(options: dict, broker, depth: int, actor_name: str = "", args: list | tuple = ()) -> str | None:
    for name, value in options.items():
        if name not in OPTIONS:
            return f"option {str(name)[:40]!r} is not the producer's to set"
        if not isinstance(value, OPTIONS[name]) or (isinstance(value, bool) and bool not in OPTIONS[name]):
            return f"option {name!r} is {type(value).__name__}, not {'/'.join(t.__name__ for t in OPTIONS[name])}"
    if not 0 <= options.get("retries", 0) <= 10_000:
        return "option 'retries' out of range"
    eta = options.get("eta")
    if eta is not None and eta > time.time() * 1000 + MAX_ETA_MS:
        return f"option 'eta' is more than {MAX_ETA_MS // 1000} s ahead"
    if options.get("pipe_ignore"):  # the kit's pipelines pass each result on; only a stranger sets this
        return "option 'pipe_ignore' is not the producer's to set"
    target = options.get("pipe_target")
    if target is not None:
        # A pipeline from the wire is checked like arguments: only the kit's own shape passes (the next step
        # of this workload's pipeline, with the same envelope), so one publish never makes a second, different
        # effect (stock Dramatiq enqueues any well-formed pipe_target once the actor returns).
        if depth >= MAX_PIPE_DEPTH:
            return "pipeline nested too deep"
        step = next_step(actor_name)
        if step is None:
            return f"pipe_target on {actor_name!r}, which is no pipeline step before another"
        if not isinstance(target, dict) or target.get("actor_name") != step:
            named = target.get("actor_name") if isinstance(target, dict) else target
            return f"pipe_target names {str(named)[:60]!r}, not {actor_name!r}'s next step {step!r}"
        if target.get("args") != list(args[:1]) or target.get("kwargs"):
            return f"pipe_target's arguments are not this message's envelope (step {step!r})"
        problem = message_problem(target, None, broker, depth + 1)
        if problem:
            return f"pipe_target: {problem}"
    return None


# -- reading a dead letter back (the driver's ``dead_letters``): never raises on any frame ------------------
def traceback_last_line(body: bytes) -> str | None:
    """The last line of the traceback Dramatiq's Retries middleware put on a failed message ("" if none);
    None when the body is not a Dramatiq message at all."""
    try:
        message = Message.decode(body)
    except Exception:  # noqa: BLE001 - any bytes at all may sit in .XQ
        return None
    lines = [line for line in str(message.options.get("traceback") or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def from_arg(arg: str) -> bytes:
    try:
        return arg.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate sent as JSON "\\ud800": bytes that decode() calls not UTF-8
        return arg.encode("utf-8", "surrogatepass")


def first_argument(body: bytes) -> bytes:
    """The actor's envelope argument of a Dramatiq message body; the body itself if there is none."""
    try:
        args = json.loads(body).get("args")
    except (ValueError, RecursionError, AttributeError):
        return body
    if isinstance(args, list) and args and isinstance(args[0], str):
        return from_arg(args[0])
    return body
