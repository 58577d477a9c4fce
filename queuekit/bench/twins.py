"""Run a stack's bare twin (``Stack.bare_twin``, a program of the top-level ``bare`` package) on a backlog.

``run(twin, settings, payloads, keys, options, workdir)`` has the twin's own producer publish the
payloads (confirmed), then starts ``options.workers`` worker processes on that backlog and returns once
every message has a completion timestamp (``queuekit.core.timings``). The bench sets the kit's stack
beside it: harness overhead = 1 - stack rate / bare rate.
"""
from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bare import START_GATE_ENV, Backlog
from queuekit.core.config import Settings
from queuekit.core.options import StackOptions, options_env
from queuekit.core.timings import TIMINGS_DIR_ENV, collect, count
from queuekit.core.waiting import wait_for
from queuekit.stacks.declaration import target
from queuekit.stacks.pool import WorkerPool


def group_assigned(settings: Settings, group: str, topic: str, members: int) -> Callable[[], bool]:
    """True once the bare group is stable with ``members`` members owning every partition (the start gate's
    condition: see ``bare.kafka_worker``)."""
    from queuekit.stacks.kafka import Admin

    admin = Admin(settings)
    return lambda: admin.groups_ready({group: (topic, members)})


def run(twin: str, settings: Settings, payloads: list[str], keys: list[bytes], options: StackOptions,
        workdir: Path, timeout: float = 600) -> tuple[float, list[tuple]]:
    """Publish, then consume with fresh workers; returns (publish seconds, timing rows)."""
    publish_backlog: Callable[..., Backlog] = target(twin)
    label = twin.partition(":")[0].rsplit(".", 1)[-1]  # e.g. kafka_worker
    name = f"bare-{label.removesuffix('_worker')}-{uuid.uuid4().hex[:6]}"
    timings = workdir / f"{name}.timings"
    t0 = time.monotonic()
    backlog = publish_backlog(settings, payloads, keys, f"bench.{name}", options.partitions)
    publish_s = time.monotonic() - t0
    gate = workdir / f"{name}.go"
    pool = WorkerPool(name, workdir / "logs", env={TIMINGS_DIR_ENV: str(timings), START_GATE_ENV: str(gate),
                                                    **options_env(options)})
    try:
        for _ in range(options.workers):
            pool.spawn([sys.executable, *backlog.argv])
        if backlog.group:  # members hold their partitions paused until the whole group is assigned
            group, topic = backlog.group
            members = options.workers * options.concurrency
            pool.wait_ready(group_assigned(settings, group, topic, members), timeout=120,
                            what=f"bare group {group} of {members} members owning every partition (logs: {pool.log_dir})")
        gate.touch()  # twins without a group never look at it: their workers consume from the start, as the stacks'
        wait_for(lambda: count(timings) >= len(payloads), timeout=timeout, interval=0.1,
                 what=f"{len(payloads)} completions from {name} (logs: {pool.log_dir})")
    finally:
        pool.stop(timeout=10)
        backlog.cleanup()
    return publish_s, collect(timings)
