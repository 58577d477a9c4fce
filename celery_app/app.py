"""The Celery application: broker, serialization and delivery settings.

Secure defaults: JSON only (pickle is never accepted), broker URL from
queuekit.core.config. ``make_app(options)`` builds a configured app; the module
``app`` is the worker's (``celery -A celery_app.app`` / ``celery_app.worker``),
configured from the options the stack put in the environment. The stack
builds its own publisher app with the same options, so both sides declare
identical queues.
"""
from __future__ import annotations

from celery import Celery

from queuekit.core.config import Settings, settings
from queuekit.core.options import StackOptions
from queuekit.core.worker_env import this_worker

from . import compression, kafka, redis, topology


def make_app(options: StackOptions, *, broker_url: str | None = None, include: tuple[str, ...] = (),
             config: Settings | None = None) -> Celery:
    """``options.transport``: "confluentkafka" is the same app over Kafka (kafka.py), "redis" over Redis (redis.py).
    ``config``: the kit's settings (the driver's own, e.g. the cluster topology's); default: this process's."""
    config = config or settings()
    # RabbitMQ: every node's URL, ";"-joined: kombu's failover list (one URL on a single node)
    default_url = (kafka.broker_url(config, stock=options.stock_framework) if kafka.wanted(options)
                   else redis.broker_url(config) if redis.wanted(options) else ";".join(config.amqp_urls))
    app = Celery("queuekit", broker=broker_url or default_url, include=list(include))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],  # refuse pickle and everything else
        result_accept_content=["json"],
        task_ignore_result=True,  # no result backend: chains pass results in the worker, Flower reads events
        # Flower sees tasks as they run: three confirmed event publishes per task. options.task_events=False
        # (the bench) turns them off, as a plain Celery app has them: monitoring, not delivery.
        worker_send_task_events=options.task_events,
        task_send_sent_event=options.task_events,
        # Explicit topology: our queues only; an unrouted task fails instead of creating the 'celery' queue.
        task_queues=topology.task_queues(options),
        task_routes=topology.routes(),
        task_create_missing_queues=False,
        task_default_queue=topology.queue_name("signup"),  # never used: every task has a route
        task_default_exchange=topology.TASKS.name,
        task_default_exchange_type=topology.tasks_exchange(options).type,  # topic on quorum (native delays)
        task_default_queue_type=options.queue_type,  # Celery's own declarations (we declare ours explicitly)
        # Quorum queues have no global QoS: Celery sees x-queue-type=quorum in task_queues and sets a static
        # per-consumer prefetch (prefetch x concurrency), and declares its native delayed-delivery topology.
        worker_detect_quorum_queues=True,
        # [semantics:ack-timing] after the task returns (at-least-once), unless early_ack asks for Celery's default
        # (ack when the worker starts the task: a SIGKILL mid-task loses the message).
        task_acks_late=not options.early_ack,
        task_reject_on_worker_lost=True,  # with acks_late: a lost pool child requeues instead of acking
        task_acks_on_failure=True,  # a failed task is acked: failures reach the DLQ because we publish them there
        # [semantics:prefetch] the channel's basic.qos = prefetch x concurrency, so in-flight per worker is bounded.
        worker_prefetch_multiplier=options.prefetch,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"confirm_publish": True},  # publish() returns after the broker's ack; nack raises
        # No AMQP heartbeats: with them, Celery 5.7's event loop also reads the events connection (to eat
        # broker heartbeats) and can swallow the confirm a pool thread waits for while publishing a task
        # event; that thread then waits forever holding the event mutex and the whole worker freezes.
        # A SIGKILLed worker's connection still closes at once (the kernel resets its sockets).
        broker_heartbeat=0,
        # Every bad frame dead-lettered, never dropped; options.stock_framework runs Celery's own consumer
        # instead (the framework-drops scenario shows what that loses).
        worker_consumer="celery.worker.consumer:Consumer" if options.stock_framework
        else "celery_app.frames:DeadLetteringConsumer",
        worker_hijack_root_logger=False,
    )
    if kafka.wanted(options):
        app.conf.update(kafka.overrides(options))
    if redis.wanted(options):
        app.conf.update(redis.overrides(options, config))  # Sentinel options and key prefix: the same settings
    if not options.stock_framework:
        compression.install()  # kombu inflates a 'compression' header's body as it reads it: bounded here
    return app


app = make_app(this_worker("celery").options, include=("celery_app.tasks",))
