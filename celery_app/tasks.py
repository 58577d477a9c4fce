"""The three workloads as Celery tasks: thin adapters around ``queuekit.core.execute.process``.

Every task's argument is the envelope as a JSON string (``encode(env).decode()``;
bytes that are not UTF-8 travel as kombu's base64 JSON type). ``handle`` maps
what ``process`` returns or raises onto Celery:

    Outcome                 -> return its result (acked after return: acks_late; next chain step gets it)
    MalformedMessage        -> dead-letter with err.reason, then fail (acked: task_acks_on_failure)
    PermanentError          -> dead-letter, then fail
    anything else           -> self.retry(countdown=backoff_ms * 2**n / 1000) to the same queue;
                               dead-letter once max_retries retries have failed

Dead-lettering, and why we publish instead of ``raise Reject(requeue=False)``:
Reject is atomic and the broker's DLX would keep the original Celery message
byte for byte, but RabbitMQ cannot attach our reason to a rejected message
(``x-death`` only says "rejected"), and the reason ("field 'user_id' must be
int") is what an operator needs. So ``dead_letter`` publishes the ORIGINAL
envelope bytes (the task argument, unchanged) to ``celery.dlx`` with the
reason and task metadata in headers, waits for the broker's confirm, and only
then lets the task fail and be acked. A crash between the two redelivers the
message and may dead-letter it twice (at-least-once, like everything else).
The queues' DLX (``Reject(requeue=False)``) keeps what cannot go that way: a
dead letter whose publish failed (``x-death`` is then the only reason). Frames
that never become a task, or that Celery would drop, are dead-lettered with a
reason by ``frames.py``; a failure that bypasses ``handle`` by ``on_failure``.
"""
from __future__ import annotations

import json

from celery import bootsteps
from celery.exceptions import Reject
from celery.utils.log import get_logger

from queuekit.core.envelope import MalformedMessage
from queuekit.core.execute import PermanentError, process
from queuekit.core.ledger import Ledger
from queuekit.core.worker_env import this_worker

from . import topology
from .app import app
from .frames import QueueAwareRequest

ME = this_worker("celery")  # name, options and ledger, as the stack started this worker
OPTIONS, WORKER = ME.options, ME.name
logger = get_logger(__name__)
DEAD_LETTERED = "queuekit_dead_lettered"  # set on an exception whose message handle() dead-lettered
MAX_COPY_CHARS = 64 * 1024


def ledger() -> Ledger:
    return ME.ledger  # QUEUEKIT_LEDGER, set by the stack


class RequireLedger(bootsteps.Step):
    """A worker without QUEUEKIT_LEDGER would come up healthy and then dead-letter every task
    ("no ledger path"): refuse to start instead, naming the variable (``celery worker`` by hand)."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        ledger()  # raises ValueError("no ledger path: pass one or set QUEUEKIT_LEDGER")


app.steps["worker"].add(RequireLedger)


class BindFanOutQueuesForDelays(bootsteps.StartStopStep):
    """Quorum only: the way back from Celery's native delayed delivery for the fan-out queues.

    Celery's DelayedDelivery step binds a queue's *exchange* to ``celery_delayed_delivery``; a queue
    declared with several bindings has no exchange in kombu, so it binds the queue's bindings instead:
    the fanout ``celery.tracking`` with key ``#.``, which no delayed routing key matches. A subscriber's
    retry then sat in ``celery_delayed_0`` for good (at-least-once dead-lettering keeps what it cannot
    route; RabbitMQ logs "Cannot forward any dead-letter messages"). Observed; this binds
    ``celery.tasks`` and each consumed fan-out queue by name, as DelayedDelivery does for the others.
    """

    requires = {"celery.worker.consumer.delayed_delivery:DelayedDelivery"}

    def include_if(self, c):
        return OPTIONS.queue_type == "quorum"

    def start(self, c):
        from kombu import Queue
        from kombu.transport.native_delayed_delivery import bind_queue_to_native_delayed_delivery_exchange

        tasks = topology.tasks_exchange(OPTIONS)
        with c.app.connection_for_write() as connection:
            for queue in c.app.amqp.queues.consume_from.values():
                if queue.bindings:  # the fan-out queues
                    bind_queue_to_native_delayed_delivery_exchange(
                        connection, Queue(queue.name, tasks, routing_key=queue.name))


app.steps["consumer"].add(BindFanOutQueuesForDelays)


class ServiceTask(app.Task):
    Request = "celery.worker.request:Request" if OPTIONS.stock_framework else QueueAwareRequest

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """A failure that did not pass through ``handle``'s dead-lettering (a bug in an adapter, a
        signature Celery let through): Celery would ack it and keep nothing, so keep it here."""
        if getattr(exc, DEAD_LETTERED, False) or isinstance(exc, Reject) or OPTIONS.stock_framework:
            return
        body = json.dumps([list(args or ()), dict(kwargs or {}), {}], default=repr)[:MAX_COPY_CHARS]
        queue = (self.request.delivery_info or {}).get("queue") or ""
        service = topology.service_of_queue(queue) if queue.startswith(topology.PREFIX) else self.name
        dead_letter(self, service, body, f"failed outside the adapter: {type(exc).__name__}: {exc}"[:1000])


# [handler:*] every task runs through this adapter: decode, process, then return (acked) / retry / dead-letter
def handle(task, service: str, payload: str | bytes, upstream: dict | None = None) -> dict:
    """Run one delivery as ``service`` and map the outcome onto ack / retry / dead-letter."""
    retries = task.request.retries  # Celery's own count: 0 on the first attempt
    try:
        if not isinstance(payload, (str, bytes)):
            raise MalformedMessage(f"task argument is {type(payload).__name__}, not an encoded envelope")
        if upstream is not None and not isinstance(upstream, dict):
            raise MalformedMessage(f"previous step's result is {type(upstream).__name__}, not an object")
        # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger
        # transaction: a redelivery has no second effect
        outcome = process(_as_bytes(payload), service=service, worker=WORKER, ledger=ledger(),
                          guard=OPTIONS.guard, upstream=upstream)
    except MalformedMessage as err:
        dead_letter(task, service, payload, f"MalformedMessage: {err.reason}")
        _mark(err)
        raise  # never retried; the task fails and its message is acked (the DLQ holds the copy)
    except PermanentError as err:
        dead_letter(task, service, payload, f"PermanentError: {err}")
        _mark(err)
        raise
    except Exception as err:
        if retries >= OPTIONS.max_retries:  # a producer's "retries" header can only shorten this
            dead_letter(task, service, payload,
                        f"retries exhausted after {retries + 1} attempts: {type(err).__name__}: {err}"[:1000])
            _mark(err)
            raise
        # [semantics:retries] Retry with backoff: a new message (eta) to THIS service's queue, never via the fanout
        # exchange; the current message is acked once the retry is published.
        raise task.retry(exc=err, countdown=topology.retry_countdown(OPTIONS, retries),  # noqa: B904 - exc= chains it
                         max_retries=OPTIONS.max_retries, **topology.to_queue(service, OPTIONS))
    return outcome.result


# [semantics:dead-letter] the original bytes to celery.<service>.dlq with the reason, confirmed, before the task fails
# and is acked
def dead_letter(task, service: str, payload: str | bytes, reason: str) -> None:
    """Publish the original envelope bytes to ``celery.<service>.dlq`` with the reason; confirmed."""
    try:
        with task.app.producer_or_acquire() as producer:
            producer.publish(
                _as_bytes(payload), exchange=topology.DLX.name, routing_key=topology.queue_name(service),
                declare=[topology.dead_letter_queue(service, OPTIONS)], content_type="application/octet-stream",
                content_encoding="binary", delivery_mode=2, retry=True,
                headers={topology.REASON_HEADER: reason, "x-queuekit-service": service, "x-queuekit-task": task.name,
                         "x-queuekit-task-id": task.request.id, "x-queuekit-retries": task.request.retries},
            )  # confirm_publish: returns once the broker has the dead letter
    except Exception as exc:  # not published: reject instead of acking a failure, so the DLX keeps it (no reason)
        raise Reject(f"dead letter not published ({exc!r}): {reason}", requeue=False) from exc


def _as_bytes(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):  # surrogatepass: a lone surrogate ("\\ud800" in JSON) becomes bytes that
        return payload.encode("utf-8", "surrogatepass")  # decode() rejects as not UTF-8, instead of an error here
    return json.dumps(payload, default=repr)[:MAX_COPY_CHARS].encode()  # not an envelope: a copy to read


def _mark(err: BaseException) -> None:
    setattr(err, DEAD_LETTERED, True)  # on_failure: already in the DLQ


# [handler:signup] the task a signup publish sends
@app.task(bind=True, base=ServiceTask, name="signup")
def signup(self, payload):
    return handle(self, "signup", payload)


# [handler:video] the chain's first step; each step's result is the next one's first argument
@app.task(bind=True, base=ServiceTask, name="video.transcode")
def transcode(self, payload):
    return handle(self, "video.transcode", payload)


# [handler:video]
@app.task(bind=True, base=ServiceTask, name="video.thumbnail")
def thumbnail(self, transcoded, payload):  # a chain step: the previous step's result comes first
    return handle(self, "video.thumbnail", payload, upstream=transcoded)


# [handler:video]
@app.task(bind=True, base=ServiceTask, name="video.notify")
def notify(self, thumbnailed, payload):
    return handle(self, "video.notify", payload, upstream=thumbnailed)


# [handler:tracking] one task for both fan-out copies
@app.task(bind=True, base=ServiceTask, name=topology.TRACKING_TASK)
def track(self, payload):
    """One task for both fan-out copies: the delivering queue decides the service."""
    queue = self.request.delivery_info.get("queue")
    if queue is None:  # cannot happen while kombu keeps its tag table; the queue's DLX keeps the message
        raise Reject("tracking.event from an unknown consumer tag", requeue=False)
    return handle(self, topology.service_of_queue(queue), payload)
