"""Where RQ keeps a workload on Redis: its queues, its database, the connection every side uses.

RQ names its keys itself, with no prefix option: ``rq:queue:<name>`` (a list of job ids),
``rq:job:<id>`` (a hash: the serialized call, status, exc_info), the registries
``rq:wip:<name>`` (started), ``rq:failed:<name>``, ``rq:scheduled:<name>``, ``rq:finished:<name>``,
``rq:workers`` / ``rq:worker:<name>``, ``rq:queues``, and results in ``rq:results:<id>``. So the kit
cannot give it a key prefix (as the other Redis stacks have, ``queuekit/stacks/redis.py``): it gives RQ a
database of its own instead, ``KIT_DB`` on the kit's Redis. On an external Redis (QUEUEKIT_REDIS_URL) only
its owner knows which database holds nothing else: ``QUEUEKIT_RQ_DB`` must name it, or nothing starts.

One queue per service, named as the service (``signup``, ``video.transcode``, ...). No fan-out in RQ:
a tracking publish enqueues one job per subscriber queue.
"""
from __future__ import annotations

import os

from redis import Redis

from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.core.redis_client import connect
from workloads import WORKLOADS

KIT_DB = 1  # the kit's own Redis: RQ alone in database 1 (the other Redis stacks keep to prefixes in 0)
DB_ENV = "QUEUEKIT_RQ_DB"  # an external Redis: the database RQ may have to itself
JOB_PREFIX = "rq:job:"  # Job.redis_job_namespace_prefix
QUEUE_PREFIX = "rq:queue:"  # Queue.redis_queue_namespace_prefix


def database(settings: Settings) -> int:
    """RQ's database: ``KIT_DB`` on the kit's Redis, ``QUEUEKIT_RQ_DB`` on an external one (required)."""
    raw = os.environ.get(DB_ENV)
    if settings.external_redis_url and raw is None:
        raise KitError("rq names its keys rq:* with no prefix: on an external Redis it needs a database of its own",
                       f"set {DB_ENV}=<n> to a database of {settings.external_redis_url.split('@')[-1]} "
                       "that holds nothing else")
    try:
        return KIT_DB if raw is None else int(raw)
    except ValueError:
        raise KitError(f"{DB_ENV}={raw!r} is not a database number", f"set {DB_ENV} to an integer") from None


def connection(settings: Settings) -> Redis:
    """A redis-py client of RQ's database on the primary (Sentinel's ``master_for(db=N)`` in the cluster).
    RQ stores bytes: no ``decode_responses``."""
    return connect(settings, db=database(settings))


def queue_name(service: str) -> str:
    return service


def entry_services(workload: str) -> tuple[str, ...]:
    """The queues a publish of ``workload`` enqueues into: the pipeline's first step, else every service
    (RQ has no fan-out: the producer enqueues one job per subscriber)."""
    spec = WORKLOADS[workload]
    return spec.services[:1] if spec.shape == "pipeline" else spec.services


def services(workload: str) -> tuple[str, ...]:
    return WORKLOADS[workload].services


def all_queues() -> list[str]:
    return [queue_name(s) for w in WORKLOADS for s in WORKLOADS[w].services]
