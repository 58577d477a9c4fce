"""One worker OS process: ``python -m rq_app.worker <workload>...``.

An RQ ``SimpleWorker`` in THIS process, not RQ's default ``Worker``, which forks a "work horse" per job:
with the horse the process that holds the job is a child whose pid changes per job. The pool kills a worker
with its children either way; the simple worker makes the killed pid the one that ran the job (as the
dramatiq worker runs ``dramatiq.Worker`` in-process), and saves a fork per job. Job timeouts still work
(SIGALRM in this process). Scheduled jobs (retries, ``enqueue_in``) are moved by the stack's one scheduler
process (``scheduler.py``), not by a worker (``--with-scheduler``): see there why.

SIGTERM: RQ's warm shutdown (the running job finishes, then the worker registers its death). RQ's own work
loop quits on a Redis error outside its blocking pop (a broker restart): this process starts it again.
"""
from __future__ import annotations

import logging
import os
import sys
import time

from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.job import Job

from queuekit.core.config import settings
from queuekit.core.worker_env import this_worker
from workloads import WORKLOADS

from .jobs import SERIALIZER, KitJob
from .topology import connection, queue_name

WORKER_TTL_S = 10  # RQ's worker key TTL; the blocking pop wakes every WORKER_TTL_S - 5 s to refresh it
MAINTENANCE_S = 2  # how often a worker cleans the registries: finds abandoned jobs (RQ's default 600 s)
RESTART_S = 1.0  # pause before the work loop is started again after RQ quit it
LEASE_GRACE_S = 5  # RQ gives a started job timeout + 60 s before it counts as abandoned; the kit 5 s


class KitWorker(SimpleWorker):
    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # [semantics:ack-timing] no ack in RQ: a job sits in the started registry until it ends; if its worker
        # dies, the entry expires after the job timeout + this grace, and the next maintenance pass (any live
        # worker's, every MAINTENANCE_S) fails it as AbandonedJobError, or retries it while retries are left
        return int(job.timeout or 0) + LEASE_GRACE_S if job.timeout and job.timeout > 0 else WORKER_TTL_S


def main(workloads: list[str]) -> None:
    me = this_worker("rq")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {me.name} %(name)s %(levelname)s %(message)s")
    client = connection(settings())
    queues = [Queue(queue_name(s), connection=client, serializer=SERIALIZER, job_class=KitJob)
              for w in workloads for s in WORKLOADS[w].services]
    # [semantics:prefetch] none: a worker pops one job id (LMOVE) only when it is free, and holds only that one
    worker = KitWorker(queues, connection=client, name=f"{me.name}.{os.getpid()}", serializer=SERIALIZER,
                       job_class=KitJob, worker_ttl=WORKER_TTL_S, maintenance_interval=MAINTENANCE_S)
    if me.options.early_ack:
        logging.getLogger(__name__).warning("early_ack ignored: RQ has no acknowledgement to send early")
    log = logging.getLogger(__name__)
    while True:
        try:
            worker.work(logging_level="INFO")
        except (RedisError, ValueError) as exc:  # teardown fails while Redis is away; then RQ refuses the name
            log.warning("RQ's work loop failed: %r", exc)
        if worker._shutdown_requested_date is not None:  # SIGTERM / SIGINT: RQ's warm shutdown is done
            break
        # RQ's work loop quits on a Redis error outside its blocking pop (e.g. the broker restarting: "found an
        # unhandled exception, quitting..."): start it again, as a supervisor (systemd, Kubernetes) would
        log.warning("RQ's work loop quit; starting it again in %s s", RESTART_S)
        time.sleep(RESTART_S)  # a paced retry, not a readiness wait: work() itself fails fast while Redis is down
        try:
            worker.register_death()  # its own teardown could not (Redis away): RQ refuses a live name twice
        except RedisError:
            pass  # still away: work() fails again and we come back here


if __name__ == "__main__":
    main(sys.argv[1:])
