"""A plain RQ queue, job and worker: JSON serializer, the job in the worker's own process, RQ's defaults otherwise.

``python -m bare.rq_worker QUEUE``. A ``SimpleWorker`` (as the kit's stack runs: the job in this process;
``rq worker``'s default forks a work horse per job) until SIGTERM. RQ's database on the kit's Redis is 1
(``QUEUEKIT_RQ_DB`` overrides it, as for the stack): RQ names its keys ``rq:…`` with no prefix.
"""
from __future__ import annotations

import os
import sys

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from queuekit.core.config import Settings, settings
from queuekit.core.redis_client import connect

from . import Backlog, in_parallel
from .work import work


def make(config: Settings, queue: str) -> Queue:
    redis = connect(config, db=int(os.environ.get("QUEUEKIT_RQ_DB", "1")))
    return Queue(queue, connection=redis, serializer=JSONSerializer)


def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], queue: str,
                    partitions: int) -> Backlog:
    """RQ's own ``enqueue`` from ``bare.PUBLISHERS`` threads (keys, partitions: no meaning here)."""

    def send(part: list[str]) -> None:
        q = make(config, queue)  # a client per thread
        for payload in part:
            q.enqueue(work, payload, result_ttl=60)  # stored in Redis when it returns

    in_parallel(send, payloads)

    def cleanup() -> None:
        q = make(config, queue)
        q.empty()  # deletes the queue and its jobs, by name
        for registry in (q.finished_job_registry, q.failed_job_registry, q.started_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
        q.connection.unlink(f"rq:queue:{queue}:intermediate")

    return Backlog(["-m", "bare.rq_worker", queue], cleanup)


if __name__ == "__main__":
    queue = make(settings(), sys.argv[1])
    SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer).work()  # SIGTERM: warm stop
