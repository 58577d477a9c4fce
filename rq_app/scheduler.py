"""The stack's one RQ scheduler: ``python -m rq_app.scheduler``, a process beside the workers.

RQ moves a scheduled job (a retry waiting its interval, an ``enqueue_in``) back to its queue from a
scheduler holding a per-queue lock (``rq:scheduler-lock:<q>``, expiring ``interval + 60`` s). Run inside a
worker (``rq worker --with-scheduler``), it is a child of that worker: SIGKILL the worker and the lock
outlives it by a minute, during which no retry and no delayed job moves (read in rq/scheduler.py). The kit
runs it as its own process, as a deployment that cares runs one scheduler apart from its workers, so a
killed worker does not stall the retries of the others.
"""
from __future__ import annotations

import logging
import time

import redis
from rq import Queue
from rq.scheduler import RQScheduler

from queuekit.core.config import settings

from .jobs import SERIALIZER
from .topology import all_queues, connection

INTERVAL_S = 1  # how often due jobs are moved: retry and delay times are rounded up to this tick


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rq-scheduler %(name)s %(levelname)s %(message)s")
    client = connection(settings())
    queues = [Queue(q, connection=client, serializer=SERIALIZER) for q in all_queues()]
    scheduler = RQScheduler(queues, connection=client, interval=INTERVAL_S, serializer=SERIALIZER)
    while True:
        try:
            scheduler.acquire_locks()
            scheduler.work()  # until SIGTERM (RQScheduler's own handler)
            return
        except redis.exceptions.RedisError as exc:  # RQScheduler dies on a Redis restart (BusyLoadingError, ...)
            logging.getLogger(__name__).warning("RQ's scheduler quit (%r); starting it again in 1 s", exc)
            time.sleep(1.0)  # a paced retry while Redis is away, not a readiness wait


if __name__ == "__main__":
    main()
