"""``queuekit compare``: every scenario on every stack, with progress, into one Comparison."""
from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
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
from queuekit.suite.versions import column, on_rabbitmq, split_column


@dataclass
class Comparison:
    started: str
    seconds: float
    stacks: list[str]
    scenarios: list[dict[str, str]]  # name, concept, question
    cells: list[CellResult]
    environment: dict[str, Any] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)  # stack -> broker family: the report groups columns by it

    def cell(self, scenario: str, stack: str) -> CellResult | None:
        return next((c for c in self.cells if c.scenario == scenario and c.stack == stack), None)

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "seconds": self.seconds, "stacks": self.stacks,
                "scenarios": self.scenarios, "environment": self.environment,
                "families": self.families,
                "cells": [c.as_dict() for c in self.cells]}


def brokers_of(stacks: Sequence[str]) -> tuple[str, ...]:
    """The kit's broker components these stacks run on (none for the in-memory StubStack)."""
    used = {load_stack(name).capabilities.broker for name in stacks}
    return tuple(name for name in brokers.NAMES if name in used)


def libraries(stacks: Sequence[str]) -> list[str]:
    """The distributions these stacks declare they run on (``Stack.libraries``), sorted."""
    return sorted({lib for name in stacks for lib in load_stack(name).libraries})


def environment(settings: Settings, stacks: Sequence[str]) -> dict[str, Any]:
    """Broker versions, library versions, machine: the configuration that produced the numbers."""
    import os

    used = brokers_of(stacks)
    return {
        "brokers": {s.name: {"version": s.version, "url": s.url, "managed": s.managed,
                             **({"config": s.config} if s.config else {}),
                             **({"detail": s.detail} if s.healthy and s.detail else {})}  # e.g. RabbitMQ 4.x's root
                    for s in (brokers.statuses(settings, used) if used else [])},
        "libraries": {lib: version(lib) for lib in libraries(stacks)},
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


# Measured on 2 cores: with 4 lanes the machine sat ~40% idle (cells mostly wait on brokers and workers);
# many more would slow every cell down and make timing-bound cells lie.
LANES_AT_ONCE = 5

def own_vhost(name: str, settings: Settings) -> str | None:
    """The vhost ``name``'s cells use in ``compare``; None: the kit's. A variant that declares its family's
    queue names (one app, another queue type) declares ``own_vhost``: there its cells run beside the family's
    instead of after them (celery and celery_quorum in one lane held 488 s of a 582 s compare). Only on the
    kit's own RabbitMQ: on someone else's the kit creates nothing beyond its own vhost, and the variant shares
    its family's lane."""
    if settings.external("rabbitmq") or settings.clustered or not load_stack(name).own_vhost:
        return None
    return f"queuekit-{name}"


def family_lanes(stacks: Sequence[str], settings: Settings | None = None) -> dict[str, list[str]]:
    """``compare``'s lanes: one per app family on a broker. ``celery`` and ``celery_quorum`` declare the same
    queue names (one app, two queue types), so they share a lane unless the variant has a vhost of its own
    (``own_vhost``); different families share no queue, topic or group, so their cells run side by side, as
    RabbitMQ and Kafka cells do. Cells that restart the broker hold it alone (``BrokerGate``). Costliest lanes
    first: Celery's workers boot slowest, which makes its cells two to three times as long as the others'
    (``compare --quick``: 7 s a cell on RabbitMQ, 13 s on Kafka, against 3.6-6.5 s for Dramatiq, Kafka,
    share groups and streams)."""
    grouped: dict[str, list[str]] = {}
    for name in stacks:
        apart = settings is not None and own_vhost(name, settings)
        cls = load_stack(name)
        family = f"{cls.capabilities.broker}:{name if apart else cls.variant_of or name}"
        grouped.setdefault(family, []).append(name)

    def cost(names: list[str]) -> int:
        return sum(load_stack(n).cell_cost for n in names)  # declared per stack (Celery's slow worker boot: 3)

    return dict(sorted(grouped.items(), key=lambda item: -cost(item[1])))


@contextmanager
def own_vhosts(settings: Settings, stacks: Sequence[str], say: Callable[[str], None]) -> Iterator[dict[str, Settings]]:
    """stack -> the settings its cells use: the variants of ``own_vhost`` on their vhost (made now, deleted
    with everything in it afterwards), every other stack on ``settings``."""
    from queuekit.brokers.rabbitmq import RabbitMQ

    chosen = {name: replace(settings, rabbit_vhost=vhost) for name in stacks if (vhost := own_vhost(name, settings))}
    made = []
    try:
        for lane_settings in chosen.values():
            RabbitMQ(lane_settings).ensure_namespace(say)
            made.append(lane_settings)
        yield {name: chosen.get(name, settings) for name in stacks}
    finally:
        for lane_settings in made:
            RabbitMQ(lane_settings).drop_namespace()


class BrokerGate:
    """Per broker, a shared/exclusive lock: ordinary cells of different lanes share the broker; a cell that
    restarts it (``needs_kit_brokers``) waits until the broker is its alone, and holds it to the end. While
    such a cell waits, no new ordinary cell starts on that broker (else the other lanes could starve it)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.sharing: dict[str, int] = {}
        self.alone: dict[str, int] = {}  # broker -> cells that want it alone (holding or waiting)
        self.holding: set[str] = set()  # brokers one such cell holds right now

    @contextmanager
    def hold(self, broker: str, exclusive: bool) -> Iterator[None]:
        with self.cond:
            if exclusive:
                self.alone[broker] = self.alone.get(broker, 0) + 1  # from now on, ordinary cells wait
                self.cond.wait_for(lambda: not self.sharing.get(broker) and broker not in self.holding)
                self.holding.add(broker)
            else:
                self.cond.wait_for(lambda: not self.alone.get(broker))
                self.sharing[broker] = self.sharing.get(broker, 0) + 1
        try:
            yield
        finally:
            with self.cond:
                if exclusive:
                    self.holding.discard(broker)
                    self.alone[broker] -= 1
                else:
                    self.sharing[broker] -= 1
                self.cond.notify_all()


def compare(settings: Settings, scenarios: Sequence[Scenario], stacks: Sequence[str], workdir: Path,
            progress: Progress | None = None, parallel: bool = True,
            versions: Mapping[str, Settings] | None = None) -> Comparison:
    """Every scenario on every stack; with ``versions`` (another RabbitMQ version -> the settings of its
    node, ``rabbitmq_root.beside``) the RabbitMQ stacks again on each, as columns ``<stack>@<version>``
    (``queuekit/suite/versions.py``) in lanes of their own: each node holds its own queues and vhosts."""
    progress = progress or Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), console=Console(stderr=True))  # stdout: the --format output
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    versions = dict(versions or {})
    again = on_rabbitmq(stacks) if versions else []
    # column -> (stack, the settings of the node it runs on, the gate's key for that node)
    columns: dict[str, tuple[str, Settings, str]] = {}
    by_lane: dict[str, list[str]] = {}
    for series, node in (("", settings), *versions.items()):
        names = list(stacks) if not series else again
        for lane, members in (family_lanes(names, node) if parallel else {"all": names}).items():
            by_lane[f"{lane}@{series}" if series else lane] = [column(n, series) if series else n
                                                                 for n in members]
        for name in names:
            broker = load_stack(name).capabilities.broker
            columns[column(name, series) if series else name] = (name, node, column(broker, series) if series
                                                                   else broker)
    if not parallel:
        by_lane = {"all": [c for lane in by_lane.values() for c in lane]}
    else:  # costliest first over both versions' lanes (Celery's slow worker boot), as family_lanes orders one
        by_lane = dict(sorted(by_lane.items(), key=lambda item: -sum(load_stack(columns[c][0]).cell_cost
                                                                         for c in item[1])))
    gate = BrokerGate()
    per_stack: dict[str, Settings] = {}

    def run_lane(lane: str, names: list[str]) -> list[CellResult]:
        task = progress.add_task(lane, total=len(scenarios) * len(names))
        done = []
        for scenario in scenarios:
            for col in names:
                stack, node_settings, node = columns[col]
                progress.update(task, description=f"[{lane}] {scenario.name} on {col}")
                broker = load_stack(stack).capabilities.broker
                restarts = getattr(scenario, "needs_kit_brokers", False)  # restarts the broker: alone on it
                with gate.hold(node, exclusive=restarts):
                    outage.reset(broker)  # outages are per broker: a line may come from another lane's cell
                    own = workdir / "cells" / (split_column(col)[1] or "")  # another version's cells: a folder each
                    cell = run_cell(scenario, stack, per_stack.get(col, node_settings), own)
                    done.append(replace(cell, stack=col))
                    lines = outage.summary(f"{scenario.name} on {col}", broker=broker, injected=restarts)
                for line in lines:
                    progress.console.print(f"[dim]·[/dim] {line}")
                progress.advance(task)
        return done

    # Client logs (librdkafka's "Connection refused" while a broker restarts, pika's reconnects) go to
    # <run>/logs/clients.log; the terminal gets one summary line per cell that saw an outage.
    with progress, client_logs.to_file(workdir / "logs" / "clients.log") as outage, ExitStack() as vhosts, \
            ThreadPoolExecutor(max_workers=min(LANES_AT_ONCE, len(by_lane))) as pool:
        for series, node in (("", settings), *versions.items()):
            names = list(stacks) if not series else again
            chosen = vhosts.enter_context(own_vhosts(node, names if parallel else (), progress.console.print))
            per_stack.update({column(n, series) if series else n: s for n, s in chosen.items()})  # its vhost's or the node's
        futures = [pool.submit(run_lane, lane, names) for lane, names in by_lane.items()]
        cells = [cell for future in futures for cell in future.result()]
    order = {(sc.name, col): i for i, (sc, col) in enumerate((sc, col) for sc in scenarios for col in columns)}
    cells.sort(key=lambda c: order[(c.scenario, c.stack)])  # the matrix reads scenario by scenario
    env = environment(settings, stacks)
    for series, node in versions.items():
        for s in brokers.statuses(node, ("rabbitmq",)):
            env["brokers"][column("rabbitmq", series)] = {"version": s.version, "url": s.url, "managed": s.managed,
                                                           **({"detail": s.detail} if s.healthy and s.detail else {})}
    return Comparison(
        started=started, seconds=round(time.monotonic() - t0, 1), stacks=list(columns),
        scenarios=[{"name": s.name, "concept": s.concept, "question": s.question} for s in scenarios],
        cells=cells, environment=env,
        families={col: gate_key for col, (_, _, gate_key) in columns.items()},
    )
