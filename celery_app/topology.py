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

Quorum queues (``options.queue_type == "quorum"``, the ``celery_quorum`` stack):
every queue gets ``x-queue-type=quorum`` (+ delivery limit, at-least-once
dead-lettering: ``queuekit.core.queue_types``) and ``celery.tasks`` becomes a
TOPIC exchange. Why topic: a countdown/eta on quorum queues goes through
Celery's native delayed delivery (kombu ``native_delayed_delivery``: 28
``celery_delayed_<level>`` TTL queues, then ``celery_delayed_delivery``, then
back to the task's exchange), which only binds topic/fanout exchanges. With a
direct exchange Celery logs "Direct exchanges are not supported" and the worker
holds the eta message itself, unable to raise its per-consumer prefetch (no
global QoS on quorum): one waiting retry blocks a prefetch-1 worker. Routing
keys are whole queue names without wildcards, so topic routes exactly as direct.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from kombu import Exchange, Queue, binding
from kombu.transport.native_delayed_delivery import CELERY_DELAYED_DELIVERY_EXCHANGE, MAX_LEVEL, level_name

from queuekit.core.config import kafka_prefix
from queuekit.core.options import StackOptions
from queuekit.core.queue_types import dead_letter_queue_arguments, work_queue_arguments
from workloads import WORKLOADS

from . import kafka, redis


def _prefix() -> str:
    """"celery." on the kit's own brokers; with a Kafka namespace in effect (an external Kafka, or
    QUEUEKIT_KAFKA_PREFIX) that namespace first, "qk-1a2b3c4d.celery.": the queue names are the
    celery_kafka stack's topic and group names, and one topology serves both transports, so the
    RabbitMQ stacks carry it too (harmless: their vhost is the install's own already)."""
    namespace = kafka_prefix()
    return "celery." if namespace == "qk." else f"{namespace}celery."


PREFIX = _prefix()
TASKS = Exchange("celery.tasks", "direct", durable=True)  # Celery binds every queue to its default exchange
TASKS_TOPIC = Exchange("celery.tasks", "topic", durable=True)  # the same, on quorum queues (see above)
DLX = Exchange("celery.dlx", "direct", durable=True)
TRACKING = Exchange("celery.tracking", "fanout", durable=True)
EXCHANGES = (TASKS, DLX, TRACKING)
DELAYED_PREFIX = "celery_delayed_"  # kombu's native delayed delivery: celery_delayed_<0..27>, celery_delayed_delivery
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


def tasks_exchange(options: StackOptions) -> Exchange:
    return TASKS_TOPIC if options.queue_type == "quorum" else TASKS


# [topology:*@celery,celery_quorum] each service's queue: its DLX, the quorum arguments, and the bound that refuses
# publishes
def work_queue(service: str, options: StackOptions) -> Queue:
    workload = service.split(".")[0]
    args = {"x-dead-letter-exchange": DLX.name, "x-dead-letter-routing-key": queue_name(service),
            **work_queue_arguments(options)}  # quorum: type, delivery limit, at-least-once dead-lettering
    if options.queue_max_length is not None and service in entry_services(workload):
        # a full queue makes the broker nack the publish (confirm -> refused) instead of dropping the oldest
        args.update({"x-max-length": options.queue_max_length, "x-overflow": "reject-publish"})
    name = queue_name(service)
    tasks = tasks_exchange(options)
    if WORKLOADS[workload].shape == "fan-out" and not redis.wanted(options):  # by the fanout and by name (retries)
        # (on Redis a fanout exchange is PUB/SUB, lost when nobody listens: celery_redis sends per-queue copies)
        # (kombu drops a Queue's exchange when it has bindings: both bindings are listed)
        return Queue(name, [binding(tasks, routing_key=name), binding(TRACKING)], routing_key=name, durable=True,
                     queue_arguments=args)
    return Queue(name, tasks, routing_key=name, durable=True, queue_arguments=args)


def dead_letter_queue(service: str, options: StackOptions) -> Queue:
    return Queue(dlq_name(service), DLX, routing_key=queue_name(service), durable=True,
                 queue_arguments=dead_letter_queue_arguments(options))


def services(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    return [service for workload in workloads for service in WORKLOADS[workload].services]


def kit_queues(workloads: Iterable[str] = WORKLOADS) -> tuple[list[str], list[str]]:
    """Every queue the kit may have declared on RabbitMQ for ``workloads``, BY NAME (never a foreign celery.*
    one, nor Celery's own celery.pidbox): the work queues and kombu's delayed-delivery queues (a quorum run
    declares those, shared by every workload; kombu fixes their names), and the dead-letter queues."""
    work = [queue_name(s) for s in services(workloads)] + delayed_names()
    return work, [dlq_name(s) for s in services(workloads)]


def kit_exchanges(workloads: Iterable[str] = WORKLOADS) -> list[str]:
    """Our exchanges and kombu's delayed-delivery ones, BY NAME: ``celery.tasks``, ``celery.dlx`` and the
    delayed ones serve every workload, ``celery.tracking`` the tracking fan-out only."""
    own = [e.name for e in EXCHANGES if e is not TRACKING or "tracking" in workloads]
    return own + delayed_names() + [CELERY_DELAYED_DELIVERY_EXCHANGE]


def delayed_names() -> list[str]:
    """kombu's native delayed delivery: a queue and an exchange per level, celery_delayed_<0..27>."""
    return [level_name(level) for level in range(MAX_LEVEL + 1)]


def task_queues(options: StackOptions) -> list[Queue]:
    """Every work queue (Celery's ``task_queues``; workers pick theirs with ``-Q``)."""
    return [work_queue(service, options) for service in services()]


def routes() -> dict[str, dict]:
    """Celery's ``task_routes``: a named queue per task, the fanout exchange for tracking."""
    table: dict[str, dict] = {task_name(s): {"queue": queue_name(s)} for s in services() if task_name(s) != TRACKING_TASK}
    table[TRACKING_TASK] = {"exchange": TRACKING.name, "exchange_type": "fanout", "routing_key": TRACKING_TASK}
    return table


def to_queue(service: str, options: StackOptions) -> dict:
    """Publish options that reach exactly this service's queue, overriding any route (the fanout's)."""
    name = queue_name(service)
    if kafka.wanted(options) or redis.wanted(options):
        # kombu's virtual transport keeps bindings in the memory of the connection that declared them; a
        # producer's pooled connection may not have, and a publish to celery.tasks then reaches no topic,
        # silently (observed). The default exchange routes by queue name alone (on Redis, where the bindings are
        # a SET in Redis, too: a retry then never depends on a binding a purge may have removed).
        return {"queue": name, "exchange": "", "exchange_type": "direct", "routing_key": name}
    tasks = tasks_exchange(options)
    return {"queue": name, "exchange": tasks.name, "exchange_type": tasks.type, "routing_key": name}


def retry_countdown(options: StackOptions, retries: int) -> float:
    """Seconds before retry ``retries`` (0-based): backoff_ms * 2**retries.

    On quorum queues Celery delays natively (``app.send_task``): the countdown becomes a
    routing key of whole seconds, ``calculate_routing_key(int(countdown), …)``, which raises
    ValueError for 0 < countdown < 1, and ``task.retry`` turns a failed publish into
    ``Reject(requeue=False)``: a sub-second retry would dead-letter the task on its first
    failure. So on quorum a retry waits whole seconds, at least one (a finding: the backoff curve
    below 1 s flattens to 1 s, 1 s, 2 s, ...).
    """
    seconds = options.backoff_ms * 2**retries / 1000
    return float(max(1, math.ceil(seconds))) if options.queue_type == "quorum" else seconds


def service_of_queue(queue: str) -> str:
    if not queue.startswith(PREFIX):
        raise ValueError(f"{queue!r} is not a celery stack queue")
    return queue[len(PREFIX):]


def declare(channel, workloads: Iterable[str], options: StackOptions) -> None:
    """Declare exchanges, work queues (with their bindings) and dead-letter queues. Idempotent."""
    for exchange in (tasks_exchange(options), DLX, TRACKING):
        exchange(channel).declare()
    for service in services(workloads):
        dead_letter_queue(service, options)(channel).declare()  # before the work queue can dead-letter into it
        work_queue(service, options)(channel).declare()
