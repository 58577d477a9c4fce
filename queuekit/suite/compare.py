"""``queuekit compare``: every scenario on every stack, with progress, into one Comparison."""
from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from queuekit import brokers
from queuekit.core.config import Settings
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


def environment(settings: Settings) -> dict[str, Any]:
    """Broker versions, library versions, machine: the configuration that produced the numbers."""
    import os

    return {
        "brokers": {s.name: {"version": s.version, "url": s.url, "managed": s.managed}
                    for s in brokers.statuses(settings)},
        "libraries": {lib: version(lib) for lib in LIBRARIES},
        "python": platform.python_version(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
    }


def compare(settings: Settings, scenarios: Sequence, stacks: Sequence[str], workdir: Path,
            progress: Progress | None = None) -> Comparison:
    progress = progress or Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn())
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    cells: list[CellResult] = []
    with progress:
        task = progress.add_task("comparing", total=len(scenarios) * len(stacks))
        for scenario in scenarios:
            for stack in stacks:
                progress.update(task, description=f"{scenario.name} on {stack}")
                cells.append(run_cell(scenario, stack, settings, workdir / "cells"))
                progress.advance(task)
    return Comparison(
        started=started, seconds=round(time.monotonic() - t0, 1), stacks=list(stacks),
        scenarios=[{"name": s.name, "concept": s.concept, "question": s.question} for s in scenarios],
        cells=cells, environment=environment(settings),
    )
