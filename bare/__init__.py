"""Bare-framework twins of the stacks: the smallest idiomatic program of each framework, same work, same knobs.

Outside the harness on purpose: these programs import their framework, the workload's work
(``bare.work``) and the worker-side recorder (``queuekit.core.timings``) and settings, nothing of the
kit's driver (an import contract in pyproject.toml says so). Each program module has
``publish_backlog(settings, payloads, keys, name, partitions) -> Backlog``: the framework's own producer
publishes the backlog (confirmed), and the ``Backlog`` says how to start a worker on it and clean up.
A stack names its twin in ``Stack.bare_twin``; the bench driver (``queuekit/bench/twins.py``) runs it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

START_GATE_ENV = "QUEUEKIT_START_GATE"  # a file that exists once the twin may start (kafka_worker)
# Parallel confirmed publishers: one waits an fsync per persistent message, several share it. Measured with
# 4 / 8 / 16 threads, 4,000 backlog messages: Celery 819 / 1,030 / 937 msgs/s, Dramatiq 1,179 / 1,603 / 1,643.
PUBLISHERS = 8

# librdkafka's log lines (e.g. "Purging 1 unserved events" as a producer closes) as Python log records,
# not stderr lines in the middle of the bench's progress
RDKAFKA_LOG = logging.getLogger("bare.rdkafka")


@dataclass(frozen=True)
class Backlog:
    argv: list[str]  # a worker process: [sys.executable, *argv]
    cleanup: Callable[[], None]  # delete what publish_backlog created
    # A consumer group whose members hold their partitions paused until the whole group is assigned (the start
    # gate, see kafka_worker): the driver waits for it before opening the gate. None: consume from the start.
    group: tuple[str, str] | None = None  # (group, topic)


def in_parallel(send: Callable[[list], object], items: list, publishers: int = PUBLISHERS) -> list:
    """``send`` each slice of ``items`` from its own thread (own connection); the results in slice order."""
    from concurrent.futures import ThreadPoolExecutor

    slices = [items[i::publishers] for i in range(publishers)]
    with ThreadPoolExecutor(publishers) as pool:
        return list(pool.map(send, [s for s in slices if s]))
