"""``queuekit dashboard``: every stack and workload, live, in a browser; and ``/metrics`` for Prometheus.

A Starlette app served by uvicorn on 127.0.0.1. A background task samples
each stack's ``observe`` module (``queuekit.stacks.observe``) once per
interval in a worker thread, keeps a few minutes of history, and turns the
counters into rates over the last few samples. The page (``static/``, with
uPlot vendored from npm so it works offline) polls ``/api/state`` and
updates its numbers and charts in place. Stack names come from the registry:
a new stack appears here when it is registered.

Routes: ``/`` the page, ``/api/state`` JSON, ``/metrics`` Prometheus text,
``/static/…`` the page's assets.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from anyio import to_thread
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation, observer
from queuekit.stacks.registry import load_stack, stack_names

STATIC = Path(__file__).with_name("static")
HISTORY = 300  # samples kept (5 minutes at 1 s)
SHOWN = 120  # samples sent to the page
RATE_WINDOW = 3  # rates over this many sample intervals: smooth enough, still live
REASONS = 3  # latest dead-letter reasons shown per workload


class Sampler:
    """The latest observation of every stack, a history of them, and rates from counter deltas."""

    def __init__(self, settings: Settings, stacks: tuple[str, ...]):
        self.settings, self.stacks = settings, stacks
        self.history: deque[tuple[float, dict[str, dict[str, Observation]]]] = deque(maxlen=HISTORY)
        self.errors: dict[str, str] = {}
        self.reasons: dict[tuple[str, str], tuple[int, list[str]]] = {}  # (stack, workload) -> (dead count, reasons)

    def sample(self) -> None:
        """One read of every stack (blocking: run in a thread)."""
        now, seen = time.time(), {}
        for stack in self.stacks:
            try:
                seen[stack] = self._observe(stack)
                self.errors.pop(stack, None)
            except LookupError as exc:  # no observe module: a note, not a failure
                self.errors[stack] = str(exc).strip("'\"")
            except Exception as exc:  # noqa: BLE001 - shown on the page; the other stacks still update
                self.errors[stack] = f"{type(exc).__name__}: {exc}"[:200]
        self.history.append((now, seen))

    def _observe(self, stack: str) -> dict[str, Observation]:
        module = observer(stack)
        if module is None:
            raise LookupError(f"no live view yet: add {stack}'s app package an observe.py (see queuekit/stacks/observe.py)")
        observed = module.observe(self.settings)
        for workload, obs in observed.items():
            known = self.reasons.get((stack, workload))
            if obs.dead_letters and (known is None or known[0] != obs.dead_letters):
                try:
                    self.reasons[(stack, workload)] = (obs.dead_letters, self._latest_reasons(stack, workload))
                except Exception as exc:  # noqa: BLE001 - the numbers still show; the reasons are read again next time
                    self.reasons[(stack, workload)] = (-1, [f"reasons not read yet: {type(exc).__name__}: {exc}"[:200]])
        return observed

    def _stack(self, stack: str):
        return load_stack(stack)(self.settings, self.settings.home / "dashboard" / "unused-ledger.sqlite")

    def _latest_reasons(self, stack: str, workload: str) -> list[str]:
        dead = self._stack(stack).dead_letters(workload)  # read without consuming them
        return [f"{d.service}: {d.reason.strip().splitlines()[-1][:160] if d.reason.strip() else '?'}"
                for d in dead[-REASONS:]]

    def state(self) -> dict[str, Any]:
        """What the page shows: per stack, per workload, the latest numbers and the recent series."""
        samples = list(self.history)[-SHOWN - RATE_WINDOW:]
        out = []
        for stack in self.stacks:
            cls = load_stack(stack)
            module = observer(stack)
            workloads = []
            names = list(dict.fromkeys(w for _, seen in samples for w in seen.get(stack, {})))
            for workload in names:
                series = [(t, seen[stack][workload]) for t, seen in samples if workload in seen.get(stack, {})]
                t, last = series[-1]
                points = [{"t": t_i, "backlog": o.backlog, "in_flight": o.in_flight, "dead_letters": o.dead_letters,
                           "publish_rate": _rate(series, i, "published"), "consume_rate": _rate(series, i, "consumed")}
                          for i, (t_i, o) in enumerate(series)][-SHOWN:]
                workloads.append({
                    "name": workload, **asdict(last),
                    "reasons": self.reasons.get((stack, workload), (0, []))[1] if last.dead_letters else [],
                    "publish_rate": _rate(series, len(series) - 1, "published"),
                    "consume_rate": _rate(series, len(series) - 1, "consumed"),
                    "series": points,
                })
            out.append({"name": stack, "broker": cls.capabilities.broker, "error": self.errors.get(stack),
                        "links": module.links(self.settings) if module else {}, "workloads": workloads})
        return {"t": time.time(), "samples": len(self.history), "stacks": out}

    def collect(self):
        """Prometheus: the latest sample as gauges and counters labelled by stack and workload."""
        gauges = {k: GaugeMetricFamily(f"queuekit_{k}", help_, labels=["stack", "workload"]) for k, help_ in (
            ("backlog", "Messages not settled: ready + unacked, or consumer lag"),
            ("in_flight", "Delivered and not yet acknowledged (RabbitMQ stacks)"),
            ("dead_letters", "Messages in the dead-letter places"),
            ("consumers", "Live consumers on the entry queue / members of the entry group"))}
        counters = {k: CounterMetricFamily(f"queuekit_{k}", help_, labels=["stack", "workload"]) for k, help_ in (
            ("published", "Messages into the workload's entry"), ("consumed", "Entry messages acked / committed"))}
        up = GaugeMetricFamily("queuekit_stack_up", "1 when the last read of the stack's broker view worked",
                               labels=["stack"])
        if self.history:
            _, seen = self.history[-1]
            for stack in self.stacks:
                up.add_metric([stack], 0 if stack in self.errors else 1)
                for workload, obs in seen.get(stack, {}).items():
                    for key, family in {**gauges, **counters}.items():
                        value = getattr(obs, key)
                        if value is not None:
                            family.add_metric([stack, workload], value)
        yield up
        yield from gauges.values()
        yield from counters.values()


def _rate(series: list[tuple[float, Observation]], i: int, counter: str) -> float | None:
    j = max(0, i - RATE_WINDOW)
    (t0, a), (t1, b) = series[j], series[i]
    first, last = getattr(a, counter), getattr(b, counter)
    if first is None or last is None or t1 <= t0:
        return None
    return max(0.0, (last - first) / (t1 - t0))  # a purge resets the counter: never a negative rate


def create_app(settings: Settings, interval: float = 1.0, stacks: tuple[str, ...] | None = None) -> Starlette:
    sampler = Sampler(settings, stacks or stack_names())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(sampler)

    async def sample_forever() -> None:
        while True:
            started = time.monotonic()
            await to_thread.run_sync(sampler.sample)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))  # the sampling period

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(sample_forever())
        yield
        task.cancel()

    async def page(request):
        return FileResponse(STATIC / "dashboard.html")

    async def state(request):
        return JSONResponse(await to_thread.run_sync(sampler.state))

    async def metrics(request):
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    return Starlette(routes=[Route("/", page), Route("/api/state", state), Route("/metrics", metrics),
                             Mount("/static", StaticFiles(directory=STATIC), name="static")],
                     lifespan=lifespan)
