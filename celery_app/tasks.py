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
dead letter whose publish failed, and frames that never become a task
(``DeadLetteringConsumer``, ``QueueAwareRequest``); ``x-death`` is their reason.
"""
from __future__ import annotations

from celery import bootsteps
from celery.exceptions import InvalidTaskError, Reject
from celery.utils.log import get_logger
from celery.worker.consumer import Consumer
from celery.worker.request import Request

from queuekit.core.envelope import MalformedMessage
from queuekit.core.execute import PermanentError, process
from queuekit.core.ledger import Ledger
from queuekit.core.worker_env import this_worker

from . import topology
from .app import app

ME = this_worker("celery")  # name, options and ledger, as the stack started this worker
OPTIONS, WORKER = ME.options, ME.name
logger = get_logger(__name__)
_task_consumer = None  # the worker's kombu Consumer (set by RememberTaskConsumer)


def ledger() -> Ledger:
    return ME.ledger  # QUEUEKIT_LEDGER, set by the stack


class RememberTaskConsumer(bootsteps.StartStopStep):
    """Keeps the task consumer at hand (restarted with it after a reconnection)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c):
        global _task_consumer
        _task_consumer = c.task_consumer


app.steps["consumer"].add(RememberTaskConsumer)


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


class QueueAwareRequest(Request):
    """A request that knows which queue delivered it: ``self.request.delivery_info["queue"]``.

    Celery keeps only exchange and routing key of a delivery, which are the same
    for both copies of a fanout; the AMQP consumer tag names the queue.
    """

    def __init__(self, message, *args, **kwargs):
        try:
            super().__init__(message, *args, **kwargs)
        except (ValueError, TypeError) as exc:
            # A task header over a body that is not [args, kwargs, embed] makes stock Celery 5.7 die with
            # "Unrecoverable error" (and the next worker too: a poison pill). As InvalidTaskError, Celery
            # rejects it without requeue instead, and the queue's DLX keeps it.
            raise InvalidTaskError(f"not a task message body: {exc}") from exc
        info = message.delivery_info or {}
        tags = getattr(_task_consumer, "_active_tags", {})  # kombu's {queue name: consumer tag} (private)
        by_tag = next((q for q, t in tags.items() if t == info.get("consumer_tag")), None)
        # kombu's virtual transports (celery_kafka) carry no consumer tag; there each copy is published to
        # its queue by name (no fanout exchange), so the routing key names the queue.
        by_key = info.get("routing_key") if info.get("routing_key") in tags else None
        self._delivery_info["queue"] = by_tag or by_key


class DeadLetteringConsumer(Consumer):
    """Stock Celery acks a frame it cannot decode (wrong content type, broken JSON): it is gone, with a
    CRITICAL log line. Rejecting it instead lets the queue's DLX keep it (``worker_consumer`` setting)."""

    def on_decode_error(self, message, exc):
        logger.critical("undecodable frame dead-lettered: %r (content type %r)", exc, message.content_type)
        message.reject_log_error(logger, self.connection_errors)  # requeue=False -> celery.dlx


class ServiceTask(app.Task):
    Request = QueueAwareRequest


def handle(task, service: str, payload: str | bytes, upstream: dict | None = None) -> dict:
    """Run one delivery as ``service`` and map the outcome onto ack / retry / dead-letter."""
    retries = task.request.retries  # Celery's own count: 0 on the first attempt
    try:
        outcome = process(_as_bytes(payload), service=service, worker=WORKER, ledger=ledger(),
                          guard=OPTIONS.guard, upstream=upstream)
    except MalformedMessage as err:
        dead_letter(task, service, payload, f"MalformedMessage: {err.reason}")
        raise  # never retried; the task fails and its message is acked (the DLQ holds the copy)
    except PermanentError as err:
        dead_letter(task, service, payload, f"PermanentError: {err}")
        raise
    except Exception as err:
        if retries >= OPTIONS.max_retries:
            dead_letter(task, service, payload,
                        f"retries exhausted after {retries + 1} attempts: {type(err).__name__}: {err}")
            raise
        # Retry with backoff: a new message (eta) to THIS service's queue, never via the fanout exchange;
        # the current message is acked once the retry is published.
        raise task.retry(exc=err, countdown=topology.retry_countdown(OPTIONS, retries),  # noqa: B904 - exc= chains it
                         max_retries=OPTIONS.max_retries, **topology.to_queue(service, OPTIONS))
    return outcome.result


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


def _as_bytes(payload: str | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else payload.encode("utf-8")


@app.task(bind=True, base=ServiceTask, name="signup")
def signup(self, payload):
    return handle(self, "signup", payload)


@app.task(bind=True, base=ServiceTask, name="video.transcode")
def transcode(self, payload):
    return handle(self, "video.transcode", payload)


@app.task(bind=True, base=ServiceTask, name="video.thumbnail")
def thumbnail(self, transcoded, payload):  # a chain step: the previous step's result comes first
    return handle(self, "video.thumbnail", payload, upstream=transcoded)


@app.task(bind=True, base=ServiceTask, name="video.notify")
def notify(self, thumbnailed, payload):
    return handle(self, "video.notify", payload, upstream=thumbnailed)


@app.task(bind=True, base=ServiceTask, name=topology.TRACKING_TASK)
def track(self, payload):
    """One task for both fan-out copies: the delivering queue decides the service."""
    queue = self.request.delivery_info.get("queue")
    if queue is None:  # cannot happen while kombu keeps its tag table; the queue's DLX keeps the message
        raise Reject("tracking.event from an unknown consumer tag", requeue=False)
    return handle(self, topology.service_of_queue(queue), payload)
