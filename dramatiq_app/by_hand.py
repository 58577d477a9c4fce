"""The Dramatiq stack's workers run by hand, Dramatiq's own way: ``dramatiq dramatiq_app.actors …``.

``queuekit worker dramatiq`` declares the queues with ``declare`` and runs
``commands``; the README's "Run it yourself" shows the same command line.
Dramatiq's CLI forks ``--processes`` worker processes itself; prefetch and
the delay-queue wake-up come from its own environment variables.
"""
from __future__ import annotations

from collections.abc import Sequence

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions
from workloads import WORKLOADS

from .topology import queue_name


def worker_timeout_ms(options: StackOptions) -> int:
    """How often a consumer wakes to move due retries out of its delay queue (Dramatiq's default 1000 ms
    would round every retry delay up to >= ~1 s): kept under the first backoff."""
    return min(1000, max(10, options.backoff_ms // 2))


def declare(settings: Settings, workloads: Sequence[str], options: StackOptions) -> None:
    """Each service's queue with its ``.DQ`` and ``.XQ`` (a worker would declare them too, on start)."""
    from .broker import make_broker

    broker = make_broker(options, settings, name="dramatiq-declare")
    try:
        for workload in workloads:
            for service in WORKLOADS[workload].services:
                broker.declare_queue(queue_name(service), ensure=True)
    finally:
        broker.close()


def commands(workloads: Sequence[str], options: StackOptions, prefix: str) -> list[tuple[str, list[str], dict]]:
    """One ``dramatiq`` command: it runs ``options.workers`` processes x ``options.concurrency`` threads."""
    queues = [queue_name(s) for w in workloads for s in WORKLOADS[w].services]
    env = {
        "dramatiq_queue_prefetch": str(options.prefetch),  # basic.qos per consumer (default 2 x threads)
        "dramatiq_worker_timeout": str(worker_timeout_ms(options)),
    }
    argv = ["dramatiq", "dramatiq_app.actors", "--processes", str(options.workers),
            "--threads", str(options.concurrency), "--queues", *queues]
    return [(prefix, argv, env)]
