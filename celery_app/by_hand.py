"""The Celery stack's workers run by hand, Celery's own way: ``celery -A celery_app.app worker …``.

``queuekit worker celery`` declares the topology with ``declare`` and runs
``commands``; the README's "Run it yourself" shows the same command line.
One ``celery worker`` node per worker (``--hostname`` tells them apart in Flower).
"""
from __future__ import annotations

from collections.abc import Sequence

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions

from . import topology
from .worker import argv


def declare(settings: Settings, workloads: Sequence[str], options: StackOptions) -> None:
    """Exchanges, work queues and dead-letter queues: a worker declares only the queues it consumes."""
    from . import kafka, redis
    from .app import make_app

    if kafka.wanted(options):
        return  # over Kafka the worker creates its topics itself (kombu, ``num_partitions`` = options.partitions)
    # celery_redis: the bindings are SETs in Redis, under the stack's prefix (redis.py)
    app = make_app(options, config=settings) if redis.wanted(options) else make_app(options, broker_url=settings.amqp_url)
    with app.connection_for_write() as conn:
        topology.declare(conn.default_channel, workloads, options)


def commands(workloads: Sequence[str], options: StackOptions, prefix: str) -> list[tuple[str, list[str], dict]]:
    """(worker name, argv, extra environment) per worker process."""
    return [(f"{prefix}-{i}", ["celery", "-A", "celery_app.app", *argv(list(workloads), options, f"{prefix}-{i}")], {})
            for i in range(options.workers)]
