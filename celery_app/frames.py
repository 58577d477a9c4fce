"""Frames the Celery worker receives before any task code runs: dead-lettered with a reason, never dropped.

Stock Celery 5.x, given what any producer can put on a queue, would:

* ack and forget a frame it cannot decode (wrong content type, broken JSON, pickle: refused unread);
* die with "Unrecoverable error" on a ``task`` header that is not a string (unhashable) or a known
  task without an ``id``, and the next worker on the same message too (a poison pill);
* ack a task whose ``expires`` is past, or whose id was revoked, with no trace but a log line;
* run a task with the wrong arguments (``args=[]``), fail it, and ack the failure;
* hold a task with an ``eta`` years ahead unacked for as long.

``DeadLetteringConsumer`` (the ``worker_consumer`` setting) checks every frame before Celery's
strategy sees it (``frame_problem``) and wraps the strategy so nothing escapes into the event
loop; ``QueueAwareRequest`` turns any failure to build a request into an invalid task and
dead-letters a revoked or expired one before Celery acks it. A dead-lettered frame is published
to ``celery.dlx`` under its queue's name (so it lands in that queue's ``.dlq``) with the reason in
``x-queuekit-reason``, confirmed, and only then acked; if that publish fails it is rejected and the
queue's own DLX keeps it (without a reason, but kept).
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from celery import bootsteps
from celery.exceptions import InvalidTaskError
from celery.utils.log import get_logger
from celery.utils.time import maybe_iso8601
from celery.worker.consumer import Consumer
from celery.worker.request import Request
from kombu.exceptions import ContentDisallowed, DecodeError
from vine import promise

from workloads import WORKLOADS

from . import kafka, topology
from .app import app

logger = get_logger(__name__)
MAX_FRAME_BYTES = 1024 * 1024  # a task message is < 2 KiB; bigger frames are dead-lettered unread
TRUNCATED_BYTES = 64 * 1024  # what a dead letter keeps of a frame over MAX_FRAME_BYTES
MAX_ETA = timedelta(hours=1)  # a task may wait for its retry backoff, not for a year (held unacked meanwhile)
# Protocol 2 headers Celery reads before any task code runs, and the types it assumes.
HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "task": (str,), "lang": (str,), "shadow": (str, type(None)), "eta": (str, type(None)),
    "expires": (str, type(None)), "group": (str, type(None)), "group_index": (int, type(None)),
    "retries": (int,), "timelimit": (list, tuple, type(None)), "root_id": (str, type(None)),
    "parent_id": (str, type(None)), "argsrepr": (str, type(None)), "kwargsrepr": (str, type(None)),
    "origin": (str, type(None)), "ignore_result": (bool, type(None)), "stamped_headers": (list, type(None)),
    "stamps": (dict, type(None)), "replaced_task_nesting": (int, type(None)),
}
ON_KAFKA = str(app.conf.broker_url or "").split("://")[0] in (kafka.SCHEME, kafka.STOCK_SCHEME)  # celery_kafka's
ON_REDIS = str(app.conf.broker_url or "").split("://")[0] in ("redis", "rediss", "sentinel")  # celery_redis's
_task_consumer = None  # the worker's kombu Consumer (set by RememberTaskConsumer)


class RememberTaskConsumer(bootsteps.StartStopStep):
    """Keeps the task consumer at hand (restarted with it after a reconnection)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c):
        global _task_consumer
        _task_consumer = c.task_consumer


app.steps["consumer"].add(RememberTaskConsumer)


def queue_of(message) -> str | None:
    """The queue that delivered ``message``, from its consumer tag (kombu's private tag table).

    kombu's virtual transports (celery_kafka) carry no consumer tag: there the record's topic names the
    queue (kombu's confluentkafka ``Message.topic``; a producer cannot forge it, unlike the routing key
    stored inside the record), and failing that the routing key, as the tasks publish each copy to its
    queue by name (no fanout exchange on that transport)."""
    info = message.delivery_info or {}
    tags = getattr(_task_consumer, "_active_tags", {})  # {queue name: consumer tag}
    by_tag = next((q for q, t in tags.items() if t == info.get("consumer_tag")), None)
    if by_tag is not None:
        return by_tag
    topic = getattr(message, "topic", None)
    if isinstance(topic, str) and topic in tags:
        return topic
    key = info.get("routing_key")
    return key if isinstance(key, str) and key in tags else None


def _dead_letter_route(queue: str) -> dict:
    """Where the dead letter of a frame from ``queue`` is published.

    RabbitMQ: ``celery.dlx`` under the queue's name (bound to its ``.dlq``). Kafka (kombu's virtual
    transport): no DLX exchange exists outside the memory of the connection that declared it, so by the
    ``.dlq`` topic's name through the default exchange, as ``topology.to_queue`` routes retries there;
    on Redis (kombu's other virtual transport) the same way, by the ``.dlq`` list's name."""
    if ON_KAFKA or ON_REDIS:
        return {"exchange": "", "routing_key": topology.dlq_name(topology.service_of_queue(queue))}
    return {"exchange": topology.DLX.name, "routing_key": queue}


def frame_problem(message) -> str | None:
    """Why Celery must not be handed this frame, or None. Reads the body only if it is small and JSON."""
    body = message.body
    if message.errors:  # kombu could not read the body as it built the message (compression.py: a bomb)
        exc = message.errors[0][1]
        return f"body could not be read: {type(exc).__name__}: {str(exc)[:200]}"
    if len(body) > MAX_FRAME_BYTES:
        return f"frame of {len(body)} bytes, over the {MAX_FRAME_BYTES}-byte limit"
    headers = message.headers
    if not isinstance(headers, dict):
        return "AMQP headers are not a table"
    if "task" not in headers:
        return "no 'task' header: not a Celery task message"
    for name, types in HEADER_TYPES.items():
        if name in headers and not isinstance(headers[name], types):
            return f"header {name!r} is {type(headers[name]).__name__}, not {'/'.join(t.__name__ for t in types)}"
    task = app.tasks.get(headers["task"])
    if task is None or headers["task"].startswith("celery."):
        return f"unknown task {headers['task'][:100]!r}"
    if not headers.get("id"):
        return "header 'id' is missing or empty"
    if message.content_type != "application/json":  # refused unread: pickle is never deserialized
        return f"content type {str(message.content_type)[:60]!r} refused (JSON only)"
    now = datetime.now(timezone.utc)
    for name in ("eta", "expires"):
        if headers.get(name) is not None:
            try:
                when = maybe_iso8601(headers[name])
            except (ValueError, TypeError, OverflowError):
                return f"header {name!r} is not an ISO 8601 time: {headers[name][:60]!r}"
            when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
            if name == "eta" and when > now + MAX_ETA:
                return f"eta {headers[name][:40]} is more than {MAX_ETA} ahead"
            if name == "expires" and when < now:
                return f"expired at {headers[name][:40]} before it was received"
    try:
        payload = message.decode()  # JSON (checked above); kombu caches it for the Request
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - any failure to decode is the frame's
        return f"body is not decodable JSON: {type(exc).__name__}: {str(exc)[:200]}"
    if not (isinstance(payload, (list, tuple)) and len(payload) == 3 and isinstance(payload[0], (list, tuple))
            and isinstance(payload[1], dict) and isinstance(payload[2], (dict, type(None)))):
        return f"body of task {headers['task']!r} is not [args, kwargs, embed]"
    args, kwargs = payload[0], payload[1]
    try:
        task.__header__(*args, **kwargs)  # Celery's own signature check (what apply_async runs)
    except TypeError as exc:
        return f"arguments do not fit task {headers['task']!r}: {exc}"
    return canvas_problem(headers["task"], args, payload[2] or {})


CANVAS_FIELDS = ("callbacks", "errbacks", "chain", "chord")  # protocol 2's embed: what Celery runs after the task
SIGNATURE_FIELDS = {"task", "args", "kwargs", "options", "subtask_type", "immutable"}
SIGNATURE_OPTIONS = {"task_id", "reply_to", "root_id", "parent_id"}  # what chain() puts in a step's options


def chain_after(task_name: str) -> list[str]:
    """The chain Celery's own ``chain()`` embeds in a message for ``task_name``: the pipeline's later steps,
    last first (Celery pops the next step off the end). Empty for every task outside a pipeline."""
    for spec in WORKLOADS.values():
        names = [topology.task_name(s) for s in spec.services]
        if spec.shape == "pipeline" and task_name in names:
            return names[names.index(task_name) + 1:][::-1]
    return []


def canvas_problem(task_name: str, args, embed) -> str | None:
    """The canvas a frame asks Celery to run after (or instead of) the task, checked like its arguments.

    Stock Celery runs whatever a frame embeds: ``callbacks``/``errbacks`` naming any registered task with any
    arguments (a second, different effect), a ``chain`` of any steps, a ``chord`` it cannot join without a
    result backend (it then fails after the effect, and the message is dead-lettered too: two endings).
    The kit's producers send one canvas only: the video pipeline's ``chain``, whose steps carry the same
    envelope. Anything else is refused before Celery acts on it (dead-lettered, no effect)."""
    if not isinstance(embed, dict):
        return "canvas: embed is not an object"
    for name in embed:
        if name not in CANVAS_FIELDS:
            return f"canvas: unknown field {str(name)[:40]!r}"
    for name in ("callbacks", "errbacks", "chord"):
        if embed.get(name) is not None:
            return f"canvas {name!r} from the wire refused (the kit's tasks take none)"
    chain = embed.get("chain")
    if chain is None or chain == []:
        return None  # one task, one effect (also a later pipeline step sent on its own)
    if not isinstance(chain, list) or not all(isinstance(step, dict) for step in chain):
        return f"canvas 'chain' is {type(chain).__name__}, not a list of signatures"
    want, names = chain_after(task_name), [step.get("task") for step in chain]
    if names != want[-len(names):]:
        return f"canvas 'chain' {str(names)[:120]} is not the pipeline's next steps after {task_name!r}"
    for step in chain:
        options = step.get("options") or {}
        if set(step) - SIGNATURE_FIELDS or not isinstance(options, dict) or set(options) - SIGNATURE_OPTIONS \
                or not all(isinstance(v, (str, type(None))) for v in options.values()):
            return f"canvas 'chain' step {step.get('task')!r} has fields or options chain() does not set"
        if step.get("args") != list(args[-1:]) or step.get("kwargs") or step.get("subtask_type") is not None \
                or step.get("immutable"):
            return f"canvas 'chain' step {step.get('task')!r} does not carry this message's envelope"
    return None


def dead_letter_frame(message, reason: str, *, settle: bool = True) -> bool:
    """Publish the frame's body with ``reason`` to its queue's dead-letter queue; then ack it (``settle``).

    Returns False (and, with ``settle``, rejects the frame so the queue's DLX keeps it) when the
    dead letter could not be published: to a queue that is not ours, or with the broker away.
    """
    if settle and message.acknowledged:
        return True
    queue = queue_of(message)
    body = message.body if isinstance(message.body, (bytes, bytearray)) else str(message.body).encode()
    headers: dict[str, str | int] = {topology.REASON_HEADER: reason[:1000], topology.FRAME_HEADER: "celery",
                                     "x-queuekit-queue": str(queue),
               "x-queuekit-content-type": str(message.content_type)[:100]}
    if len(body) > MAX_FRAME_BYTES:
        headers["x-queuekit-truncated-from"] = len(body)
        body = bytes(body[:TRUNCATED_BYTES])
    logger.warning("dead-lettering a frame from %s: %s", queue, reason[:300])
    try:
        if queue is None or not queue.startswith(topology.PREFIX) or queue.endswith(".dlq"):
            raise LookupError(f"delivered by an unknown queue {queue!r}")
        with app.producer_or_acquire() as producer:
            producer.publish(bytes(body), **_dead_letter_route(queue),
                             content_type="application/octet-stream", content_encoding="binary",
                             delivery_mode=2, headers=headers, retry=True)  # confirm_publish: broker has it
    except Exception as exc:  # noqa: BLE001 - not published: the queue's DLX keeps it instead
        # (on Kafka and Redis there is no DLX: kombu's reject(requeue=False) is an ack there, the frame is lost)
        logger.error("dead letter not published (%r): rejecting the frame to the DLX", exc)
        if settle:
            message.reject_log_error(logger, (Exception,))
        return False
    if settle:
        message.ack()
    return True


class QueueAwareRequest(Request):
    """A request that knows which queue delivered it: ``self.request.delivery_info["queue"]``.

    Celery keeps only exchange and routing key of a delivery, which are the same
    for both copies of a fanout; the AMQP consumer tag names the queue.
    """

    def __init__(self, message, *args, **kwargs):
        try:
            super().__init__(message, *args, **kwargs)
        except (InvalidTaskError, ContentDisallowed, DecodeError):
            raise  # the consumer's on_invalid_task / on_decode_error dead-letter these
        except Exception as exc:
            # Stock Celery dies with "Unrecoverable error" here (and so does the next worker): as an
            # invalid task the consumer dead-letters it instead.
            raise InvalidTaskError(f"not a task message: {type(exc).__name__}: {exc}") from exc
        self._delivery_info["queue"] = queue_of(message)

    def _announce_revoked(self, reason, terminated, signum, expired):
        """Revoked by id, or expired while waiting: keep a copy with the reason before Celery acks it."""
        if not dead_letter_frame(self._message, f"{reason} (task {self.name} {self.id})", settle=False):
            self.reject(requeue=False)  # the queue's DLX keeps it; Celery's ack below is then a no-op
        super()._announce_revoked(reason, terminated, signum, expired)


class DeadLetteringConsumer(Consumer):
    """Every frame Celery would drop, ack unread or die on goes to its dead-letter queue with a reason."""

    def create_task_handler(self, promise=promise):
        received = super().create_task_handler(promise)

        def on_task_received(message):
            try:
                problem = frame_problem(message)
            except Exception as exc:  # noqa: BLE001 - the check itself must not take the worker down
                problem = f"unreadable frame: {type(exc).__name__}: {str(exc)[:200]}"
            if problem:
                return dead_letter_frame(message, problem)
            try:
                return received(message)
            except Exception as exc:  # noqa: BLE001 - anything escaping here would stop the consumer
                logger.exception("the worker could not take a frame")
                return dead_letter_frame(message, f"the worker could not take it: {type(exc).__name__}: {exc}")

        return on_task_received

    def on_decode_error(self, message, exc):
        dead_letter_frame(message, f"undecodable ({message.content_type!r}): {type(exc).__name__}: {str(exc)[:200]}")

    def on_unknown_message(self, body, message):
        dead_letter_frame(message, "not a Celery task message")

    def on_unknown_task(self, body, message, exc):
        dead_letter_frame(message, f"unknown task: {str(exc)[:200]}")

    def on_invalid_task(self, body, message, exc):
        dead_letter_frame(message, f"invalid task message: {str(exc)[:300]}")


# -- reading a dead letter back (the driver's ``dead_letters``): never raises on any frame ------------------
def task_argument(body: bytes) -> bytes:
    """The first task argument of a Celery (protocol 2) body ``[args, kwargs, embed]``; else the body."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not (isinstance(doc, list) and len(doc) == 3 and isinstance(doc[0], list) and doc[0]):
        return body
    argument = doc[0][-1] if len(doc[0]) == 2 else doc[0][0]  # a chain step: (previous result, envelope)
    if isinstance(argument, str):
        return argument.encode("utf-8", "surrogateescape")
    if isinstance(argument, dict) and argument.get("__type__") == "base64":
        try:
            return base64.b64decode(argument["__value__"])
        except (ValueError, TypeError):
            return body
    return body
