"""RabbitMQ topology of the Celery stack: one queue per service, a dead-letter queue beside each.

    service            work queue (consumed)             dead-letter queue (never consumed)
    signup             celery.signup                     celery.signup.dlq
    video.<step>       celery.video.<step>               celery.video.<step>.dlq
    tracking.<name>    celery.tracking.<name>            celery.tracking.<name>.dlq
                       (both bound to the fanout exchange celery.tracking)

``task_routes`` (see ``routes``) names the queue per task. Every work queue is
bound to the direct exchange ``celery.tasks`` under its own name (Celery's
``task_default_exchange``; without it Celery invents an exchange per queue),
though Celery publishes to a queue of a direct exchange through the default
exchange ("" with the queue name as routing key) anyway.

Dead letters: every work queue has ``x-dead-letter-exchange = celery.dlx`` and
``x-dead-letter-routing-key = <queue name>``, and ``celery.<service>.dlq`` is
bound to ``celery.dlx`` with that key. Our tasks publish failures there
themselves (with the reason; see ``tasks.dead_letter``); the DLX catches what
the worker rejects (a frame that is not a task message, an unknown task name,
a body Celery cannot unpack, a retry or dead letter that could not be
published), so those are kept too instead of lost.

Fan-out (tracking), the trade-off: the broker copies ONE task message into
both tracking queues, so both copies carry the same task name AND the same
task id. Celery's request keeps only exchange/routing_key/priority/redelivered
of the delivery, and both are identical for the two copies; a task cannot
tell which subscriber it is running for. We keep the broker doing the fan-out
(native_fanout) and let the worker resolve the AMQP consumer tag of the
delivery to its queue (``tasks.QueueAwareRequest``), mapping queue -> service.
Costs, honestly: it reads kombu's consumer-tag table (private), and Flower /
revoke see one task id for two executions. The alternatives: a task per
service sent by the producer as a group (two publishes: no broker fan-out and
no atomicity), or one deployment per service each defining ``tracking.event``
its own way (idiomatic for separate code bases, but our workers serve both).
A retry of one subscriber goes straight back to ITS queue (``to_queue``:
celery.tasks, routing key = queue name). Celery's own ``self.retry()`` would
re-publish through the task's route, i.e. the fanout, and re-run the other
subscriber too (observed before ``to_queue``).
"""
from __future__ import annotations

from collections.abc import Iterable

from kombu import Exchange, Queue, binding

from queuekit.core.options import StackOptions
from workloads import WORKLOADS

PREFIX = "celery."
TASKS = Exchange("celery.tasks", "direct", durable=True)  # Celery binds every queue to its default exchange
DLX = Exchange("celery.dlx", "direct", durable=True)
TRACKING = Exchange("celery.tracking", "fanout", durable=True)
EXCHANGES = (TASKS, DLX, TRACKING)
TRACKING_TASK = "tracking.event"  # the one task name both tracking queues receive
REASON_HEADER = "x-queuekit-reason"  # on the dead letters our tasks publish: why it died
FRAME_HEADER = "x-queuekit-frame"  # on a dead letter holding a whole Celery frame (frames.py), not an envelope


def queue_name(service: str) -> str:
    return f"{PREFIX}{service}"


def dlq_name(service: str) -> str:
    return f"{PREFIX}{service}.dlq"


def entry_services(workload: str) -> tuple[str, ...]:
    """The services a publish reaches first (the queues that get ``queue_max_length``)."""
    spec = WORKLOADS[workload]
    return spec.services if spec.shape == "fan-out" else spec.services[:1]


def task_name(service: str) -> str:
    """Celery task name per service: the service name, except the shared fan-out task."""
    return TRACKING_TASK if service.startswith("tracking.") else service


def work_queue(service: str, options: StackOptions) -> Queue:
    workload = service.split(".")[0]
    args = {"x-dead-letter-exchange": DLX.name, "x-dead-letter-routing-key": queue_name(service)}
    if options.queue_max_length is not None and service in entry_services(workload):
        # a full queue makes the broker nack the publish (confirm -> refused) instead of dropping the oldest
        args.update({"x-max-length": options.queue_max_length, "x-overflow": "reject-publish"})
    name = queue_name(service)
    if WORKLOADS[workload].shape == "fan-out":  # reachable both by the fanout and by name (retries)
        return Queue(name, [binding(TASKS, routing_key=name), binding(TRACKING)], routing_key=name, durable=True,
                     queue_arguments=args)
    return Queue(name, TASKS, routing_key=name, durable=True, queue_arguments=args)


def dead_letter_queue(service: str) -> Queue:
    return Queue(dlq_name(service), DLX, routing_key=queue_name(service), durable=True)


def services(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    return [service for workload in workloads for service in WORKLOADS[workload].services]


def task_queues(options: StackOptions) -> list[Queue]:
    """Every work queue (Celery's ``task_queues``; workers pick theirs with ``-Q``)."""
    return [work_queue(service, options) for service in services()]


def routes() -> dict[str, dict]:
    """Celery's ``task_routes``: a named queue per task, the fanout exchange for tracking."""
    table: dict[str, dict] = {task_name(s): {"queue": queue_name(s)} for s in services() if task_name(s) != TRACKING_TASK}
    table[TRACKING_TASK] = {"exchange": TRACKING.name, "exchange_type": "fanout", "routing_key": TRACKING_TASK}
    return table


def to_queue(service: str) -> dict:
    """Publish options that reach exactly this service's queue, overriding any route (the fanout's)."""
    name = queue_name(service)
    return {"queue": name, "exchange": TASKS.name, "exchange_type": "direct", "routing_key": name}


def service_of_queue(queue: str) -> str:
    if not queue.startswith(PREFIX):
        raise ValueError(f"{queue!r} is not a celery stack queue")
    return queue[len(PREFIX):]


def declare(channel, workloads: Iterable[str], options: StackOptions) -> None:
    """Declare exchanges, work queues (with their bindings) and dead-letter queues. Idempotent."""
    for exchange in EXCHANGES:
        exchange(channel).declare()
    for service in services(workloads):
        dead_letter_queue(service)(channel).declare()  # before the work queue can dead-letter into it
        work_queue(service, options)(channel).declare()
