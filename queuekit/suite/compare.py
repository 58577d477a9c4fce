"""``queuekit compare``: every scenario on every stack, with progress, into one Comparison."""
from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from queuekit import brokers
from queuekit.core.config import Settings
from queuekit.stacks.registry import load_stack
from queuekit.suite import client_logs
from queuekit.suite.model import Scenario
from queuekit.suite.runner import CellResult, run_cell

LIBRARIES = ("celery", "kombu", "dramatiq", "confluent-kafka", "pika", "flower")


@dataclass
class Comparison:
    started: str
    seconds: float
    stacks: list[str]
    scenarios: list[dict[str, str]]  # name, concept, question
    cells: list[CellResult]
    environment: dict[str, Any] = field(default_factory=dict)

    def cell(self, scenario: str, stack: str) -> CellResult | None:
        return next((c for c in self.cells if c.scenario == scenario and c.stack == stack), None)

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "seconds": self.seconds, "stacks": self.stacks,
                "scenarios": self.scenarios, "environment": self.environment,
                "cells": [c.as_dict() for c in self.cells]}


def brokers_of(stacks: Sequence[str]) -> tuple[str, ...]:
    """The kit's broker components these stacks run on (none for the in-memory StubStack)."""
    used = {load_stack(name).capabilities.broker for name in stacks}
    return tuple(name for name in brokers.NAMES if name in used)


def environment(settings: Settings, stacks: Sequence[str]) -> dict[str, Any]:
    """Broker versions, library versions, machine: the configuration that produced the numbers."""
    import os

    used = brokers_of(stacks)
    return {
        "brokers": {s.name: {"version": s.version, "url": s.url, "managed": s.managed}
                    for s in (brokers.statuses(settings, used) if used else [])},
        "libraries": {lib: version(lib) for lib in LIBRARIES},
        "python": platform.python_version(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
    }


def lanes(stacks: Sequence[str]) -> dict[str, list[str]]:
    """Stacks grouped by the broker they use. Lanes run side by side: a RabbitMQ cell and a Kafka cell share
    no queue, topic or process, so running them at once halves the wall time without changing a number
    that a cell asserts. Within a lane cells run one at a time (they reset the same broker)."""
    grouped: dict[str, list[str]] = {}
    for name in stacks:
        grouped.setdefault(load_stack(name).capabilities.broker, []).append(name)
    return grouped


def compare(settings: Settings, scenarios: Sequence[Scenario], stacks: Sequence[str], workdir: Path,
            progress: Progress | None = None, parallel: bool = True) -> Comparison:
    progress = progress or Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), console=Console(stderr=True))  # stdout: the --format output
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    by_lane = lanes(stacks) if parallel else {"all": list(stacks)}

    def run_lane(lane: str, names: list[str]) -> list[CellResult]:
        task = progress.add_task(lane, total=len(scenarios) * len(names))
        done = []
        for scenario in scenarios:
            for stack in names:
                progress.update(task, description=f"[{lane}] {scenario.name} on {stack}")
                broker = load_stack(stack).capabilities.broker  # lanes run side by side: outages are per broker
                outage.reset(broker)
                done.append(run_cell(scenario, stack, settings, workdir / "cells"))
                for line in outage.summary(f"{scenario.name} on {stack}", broker=broker,
                                           injected=getattr(scenario, "needs_kit_brokers", False)):
                    progress.console.print(f"[dim]·[/dim] {line}")
                progress.advance(task)
        return done

    # Client logs (librdkafka's "Connection refused" while a broker restarts, pika's reconnects) go to
    # <run>/logs/clients.log; the terminal gets one summary line per cell that saw an outage.
    with progress, client_logs.to_file(workdir / "logs" / "clients.log") as outage, \
            ThreadPoolExecutor(max_workers=len(by_lane)) as pool:
        futures = [pool.submit(run_lane, lane, names) for lane, names in by_lane.items()]
        cells = [cell for future in futures for cell in future.result()]
    order = {(sc.name, st): i for i, (sc, st) in enumerate((sc, st) for sc in scenarios for st in stacks)}
    cells.sort(key=lambda c: order[(c.scenario, c.stack)])  # the matrix reads scenario by scenario
    return Comparison(
        started=started, seconds=round(time.monotonic() - t0, 1), stacks=list(stacks),
        scenarios=[{"name": s.name, "concept": s.concept, "question": s.question} for s in scenarios],
        cells=cells, environment=environment(settings, stacks),
    )
