"""The Stack protocol: what the harness needs from each framework, and nothing more.

One implementation per app package (``celery_app.stack:CeleryStack``, …),
found through ``STACKS`` and imported lazily so a user without, say, Kafka
still runs the other two. Differences between stacks are declared as class
attributes (kombu's transport style), never tested with ``if name == …``.

Contract for implementations:

* ``start`` launches real worker OS processes (one per worker index) that run
  the stack's consumers for the given workloads, each recording into the
  ledger at ``ledger_path``, and returns once every worker is consuming.
* ``publish`` returns only after the broker has confirmed every message
  (publisher confirms / acks=all); a refused message is counted, never dropped
  silently.
* ``drain`` polls the broker's own view (ready + unacked, or consumer lag,
  including retry / delay queues) until nothing is left in flight, and raises
  ``WaitTimeout`` naming what is still there. Never a bare sleep.
* ``dead_letters`` reads the dead-letter place without consuming it.
* ``reset`` purges the stack's queues/topics/groups so any scenario runs in any
  order. It must be idempotent.
"""
from __future__ import annotations

import importlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope
from queuekit.core.options import StackOptions, options_env
from queuekit.core.ledger import LEDGER_ENV
from queuekit.stacks.pool import WorkerPool

@dataclass(frozen=True)
class PublishReport:
    confirmed: int  # envelopes the broker confirmed (every copy of each)
    refused: int = 0  # nacked / rejected by the broker (e.g. a full queue)
    seconds: float = 0.0
    copies: int = 1  # broker messages the producer sent per envelope (producer-side fan-out: one per subscriber)


@dataclass(frozen=True)
class DeadLetter:
    service: str  # which queue / consumer it died in
    payload: bytes  # the original bytes, so nothing is lost
    reason: str  # why: the decode error or the last exception


class Stack(ABC):
    name: ClassVar[str]  # "celery" | "dramatiq" | "kafka"
    broker: ClassVar[str]  # "rabbitmq" | "kafka"
    # Capabilities, as data for the scenario expectations:
    native_fanout: ClassVar[bool]  # the broker copies one publish to every subscriber
    native_dead_letter: ClassVar[bool]  # failures reach a DLQ without code of ours
    replayable: ClassVar[bool]  # consumed history can be read again

    def __init__(self, settings: Settings, ledger_path: Path):
        self.settings = settings
        self.ledger_path = ledger_path

    @abstractmethod
    def start(self, workloads: Sequence[str], options: StackOptions = StackOptions()) -> None:
        """Declare the topology, start ``options.workers`` worker processes; return once all consume."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL) and close producer connections."""

    @abstractmethod
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        """Send to the workload's entry point; return once the broker confirmed (or refused) each."""

    @abstractmethod
    def publish_raw(self, workload: str, payload: bytes) -> None:
        """Send bytes as they are (malformed input must reach the dead-letter place)."""

    @abstractmethod
    def kill_worker(self, index: int) -> int:
        """SIGKILL worker ``index`` (the process holding messages); return its pid."""

    @abstractmethod
    def drain(self, workload: str, timeout: float = 60.0) -> None:
        """Return when nothing of ``workload`` is ready or in flight; raise WaitTimeout otherwise."""

    @abstractmethod
    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """Everything in the workload's dead-letter place, read without consuming it."""

    @abstractmethod
    def backlog(self, workload: str) -> int:
        """Messages not yet settled: ready + unacked (RabbitMQ) or consumer lag (Kafka)."""

    @abstractmethod
    def reset(self) -> None:
        """Delete / purge every queue, topic and group the stack uses."""

    # -- scenario hooks: consumers joining and leaving, the in-flight view, replay --------------
    @abstractmethod
    def _spawn_worker(self, index: int) -> None:
        """Start worker process ``index`` (the same way ``start`` starts each one)."""

    @abstractmethod
    def _wait_workers_ready(self) -> None:
        """Poll until every live worker consumes (RabbitMQ consumers / Kafka group assignment)."""

    def add_worker(self) -> int:
        """A consumer joins mid-stream: one more worker process; returns its index once it consumes."""
        index = len(self.pool.procs)
        self._spawn_worker(index)
        self._wait_workers_ready()
        return index

    def stop_worker(self, index: int, timeout: float = 30.0) -> None:
        """A consumer leaves cleanly: SIGTERM worker ``index`` and wait for it to exit (warm shutdown)."""
        self.pool.stop_one(index, timeout)

    @abstractmethod
    def in_flight(self) -> dict[str, int]:
        """Per consumer: messages delivered to it and not yet acknowledged (empty for pull-based Kafka)."""

    @abstractmethod
    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new consumer reads the workload's entry point from the start: how many past messages it got."""

    def new_pool(self, options: StackOptions) -> WorkerPool:
        """This stack's worker processes: logs beside the run's ledger; ledger path and options in their env."""
        return WorkerPool(self.name, Path(self.ledger_path).parent / "logs",
                          env={LEDGER_ENV: str(self.ledger_path), **options_env(options)})

    def worker_rss_bytes(self) -> list[int]:
        """Resident memory of each worker process (with its children)."""
        return [self.pool.rss_bytes(i) for i in range(len(self.pool.procs))] if getattr(self, "pool", None) else []

    def worker_pids(self) -> list[int]:
        return self.pool.pids() if getattr(self, "pool", None) else []

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
