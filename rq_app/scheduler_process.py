"""The driver's handle on the stack's one scheduler process (``python -m rq_app.scheduler``, ``scheduler.py``).

A pool of its own (its log beside the workers', it leaves when the driver dies), outside the worker pool:
``kill_worker`` never hits it, and the scenarios' worker counts do not include it.
"""
from __future__ import annotations

from queuekit.stacks.pool import WorkerPool

from .topology import all_queues


class SchedulerProcess:
    def __init__(self, stack):
        self.stack = stack
        self.pool: WorkerPool | None = None

    def start(self) -> None:
        self.stop()
        workers = self.stack.make_pool()  # the same environment as the workers (ledger, options, topology)
        self.pool = WorkerPool(f"{self.stack.name}-scheduler", workers.log_dir, env=workers.env)
        self.pool.spawn(self.pool.python("rq_app.scheduler"), 0)

    def ready(self) -> bool:
        """Alive and holding every queue's scheduler lock (``rq:scheduler-lock:<queue>``)."""
        if self.pool is None or not self.pool.alive(0):
            return False
        client = self.stack.client
        return all(client.exists(f"rq:scheduler-lock:{q}") for q in all_queues())

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()  # SIGTERM: RQScheduler releases its locks
            self.pool = None
