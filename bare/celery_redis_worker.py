"""A plain Celery-on-Redis app and worker: one task, ``acks_late``, the kit's pool, slots and prefetch.

``python -m bare.celery_redis_worker QUEUE``. Settings are Celery's defaults except what the kit's
``celery_redis`` stack also sets for delivery and fairness: JSON, no results, late ack, prefetch
multiplier, thread pool in one process, no gossip/mingle, and kombu's ``global_keyprefix`` (the
install's Redis prefix + ``bare:``, so the twin's keys never mix with a stack's). Not the stack's
3 s visibility timeout: kombu's default (1 hour), as a plain app has it. Single node or an external
URL (``Settings.redis_url``): not through Sentinel.
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
PREFIX = f"{settings().redis_prefix}bare:"  # every key of the twin (lists, unacked, bindings) under it
app = Celery("bare", broker=settings().redis_url)
app.conf.update(
    task_serializer="json", accept_content=["json"], task_ignore_result=True,
    task_acks_late=True,  # ack after the task returns: at-least-once, as the stack
    worker_prefetch_multiplier=OPTIONS.prefetch,  # kombu's virtual QoS = prefetch x concurrency, as the stack
    broker_transport_options={"global_keyprefix": PREFIX},
    worker_hijack_root_logger=False,
)


@app.task(name="bare.work", shared=False)  # not in Celery's shared registry: bare.celery_worker has one too
def bare_work(payload: str) -> None:
    work(payload)


def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], queue: str,
                    partitions: int) -> Backlog:
    """Celery's own producer (an LPUSH per task, answered by Redis), from ``bare.PUBLISHERS`` threads."""
    app.conf.task_default_queue = queue

    def send(part: list[str]) -> None:
        with app.producer_or_acquire() as producer:  # one pooled connection per thread
            for payload in part:
                bare_work.apply_async(args=[payload], producer=producer, queue=queue)

    in_parallel(send, payloads)

    def cleanup() -> None:
        import redis

        client = redis.Redis.from_url(config.redis_url)
        try:  # by name, under the twin's prefix only (never FLUSHDB)
            names = [n for n in client.scan_iter(match=PREFIX.replace("[", "\\[") + "*", count=1000)]
            if names:
                client.unlink(*names)
        finally:
            client.close()

    return Backlog(["-m", "bare.celery_redis_worker", queue], cleanup)


if __name__ == "__main__":
    queue = sys.argv[1]
    app.conf.task_default_queue = queue
    app.worker_main(["worker", "--pool=threads", f"--concurrency={OPTIONS.concurrency}", f"--queues={queue}",
                     "--without-gossip", "--without-mingle", "--loglevel=WARNING", f"--hostname=bare-{os.getpid()}@%h"])
