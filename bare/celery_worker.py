"""A plain Celery app and worker: one task, ``acks_late``, the kit's pool, slots, prefetch and confirms.

``python -m bare.celery_worker QUEUE``. Settings are Celery's
defaults except what the kit's Celery stack also sets for delivery and
fairness: JSON, no results, late ack, prefetch multiplier, publisher
confirms, thread pool in one process, no gossip/mingle, no AMQP heartbeat.
"""
from __future__ import annotations

import os
import sys

from celery import Celery

from queuekit.core.config import Settings, settings
from queuekit.core.options import options_from_env

from . import Backlog, in_parallel
from .work import work

OPTIONS = options_from_env()
app = Celery("bare", broker=settings().amqp_url)
app.conf.update(
    task_serializer="json", accept_content=["json"], task_ignore_result=True,
    task_acks_late=True,  # ack after the task returns: at-least-once, as the stack
    worker_prefetch_multiplier=OPTIONS.prefetch,  # basic.qos = prefetch x concurrency, as the stack
    broker_transport_options={"confirm_publish": True},  # publisher confirms, as the stack
    broker_heartbeat=0, worker_hijack_root_logger=False,
)


@app.task(name="bare.work")
def bare_work(payload: str) -> None:
    work(payload)


def publisher(queue: str) -> Celery:
    app.conf.task_default_queue = queue  # declared durable by Celery on first publish
    return app


def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], queue: str,
                    partitions: int) -> Backlog:
    """Celery's own producer, confirmed, from ``bare.PUBLISHERS`` threads (keys, partitions: no meaning here)."""
    publisher(queue)

    def send(part: list[str]) -> None:
        with app.producer_or_acquire() as producer:  # one pooled connection per thread
            for payload in part:
                bare_work.apply_async(args=[payload], producer=producer, queue=queue)  # waits for the confirm

    in_parallel(send, payloads)

    def cleanup() -> None:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)

    return Backlog(["-m", "bare.celery_worker", queue], cleanup)


if __name__ == "__main__":
    queue = sys.argv[1]
    app.conf.task_default_queue = queue
    # A node name of its own: two workers both named "bare-0@host" (%i is 0 outside a prefork child) declare
    # the same exclusive pidbox queue, and the second died at start (RESOURCE_LOCKED): the bench measured one
    # bare worker against the stack's two, and reported Celery's stack as twice as fast as bare Celery.
    app.worker_main(["worker", "--pool=threads", f"--concurrency={OPTIONS.concurrency}", f"--queues={queue}",
                     "--without-gossip", "--without-mingle", "--loglevel=WARNING", f"--hostname=bare-{os.getpid()}@%h"])
