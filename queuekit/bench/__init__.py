"""``queuekit bench``: throughput and latency per stack beside raw-client baselines.

Fairness controls (recorded in the output): the same worker processes x slots
for every stack and baseline, acks after the handler everywhere, durable
queues + persistent messages / acks=all, the same prefetch, Kafka partitions =
consumer slots, payloads built before timing, a warm-up batch excluded, each
measurement repeated and reported as median with min/max.

What is measured, per stack and mode (noop, io, cpu):
* publish rate: N messages through ``Stack.publish`` (confirmed), workers stopped;
* processing rate: workers started on that backlog; N / (last effect - first
  attempt), from the ledger, so worker start-up is excluded like the baseline's
  group join;
* latency p50/p95/p99: a separate paced run below capacity, publish -> effect;
* harness overhead: ``process()`` per message with the ledger recording on and
  off (QUEUEKIT_LEDGER_RECORD=0), set against each stack's per-message time.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from queuekit.bench.baselines import kafka_baseline, rabbitmq_baseline
from queuekit.core.config import Settings
from queuekit.core.envelope import encode, make_envelope
from queuekit.core.ledger import RECORD_ENV, Ledger
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.registry import framework_stacks, load_stack
from workloads import WORKLOADS

MODES: dict[str, dict[str, Any]] = {
    "noop": {},  # the framework's own cost: decode, ledger, ack
    "io": {"fault": "slow", "seconds": 0.005},  # 5 ms waiting on I/O per message
    "cpu": {"fault": "cpu", "rounds": 2600},  # ~2 ms of hashing per message
}
STACKS = framework_stacks()  # variants (celery_quorum, celery_kafka, ...) with --stack


@dataclass(frozen=True)
class BenchConfig:
    n: int = 2000
    repeats: int = 3
    warmup: int = 100
    latency_n: int = 200
    latency_rate: float = 100.0  # msgs/s in the paced latency run
    workers: int = 2
    concurrency: int = 2
    prefetch: int = 4
    modes: tuple[str, ...] = tuple(MODES)
    stacks: tuple[str, ...] = STACKS

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(n=500, repeats=1, warmup=20, latency_n=40, latency_rate=80.0, modes=("noop",))

    @property
    def options(self) -> StackOptions:
        return StackOptions(workers=self.workers, concurrency=self.concurrency, prefetch=self.prefetch,
                            partitions=self.workers * self.concurrency)  # partitions = consumer slots


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "runs": len(values)}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)  # noqa: E731
    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99)}


@contextmanager
def ledger_recording(on: bool) -> Iterator[None]:
    """Workers inherit this process's environment: switch their ledger writes off for one run."""
    old = os.environ.get(RECORD_ENV)
    os.environ[RECORD_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        os.environ.pop(RECORD_ENV, None) if old is None else os.environ.__setitem__(RECORD_ENV, old)


def split(items: list, at: int) -> tuple[list, list]:
    return items[:at], items[at:]


def workers_down(stack, count: int) -> None:
    """Stop the worker processes (the producer stays connected) so a backlog can build."""
    for index in range(len(stack.pool.procs) - count, len(stack.pool.procs)):
        stack.stop_worker(index)


def workers_up(stack, count: int) -> None:
    """The same number of fresh workers, consuming before this returns."""
    for _ in range(count):
        stack.add_worker()


class StackBench:
    """One stack, one mode: a fresh ledger per measurement, the same options every time."""

    def __init__(self, settings: Settings, stack: str, mode: str, cfg: BenchConfig, workdir: Path):
        self.settings, self.stack_name, self.mode, self.cfg, self.workdir = settings, stack, mode, cfg, workdir

    def envelopes(self, n: int, seed: int) -> list:
        return [make_envelope(m, MODES[self.mode]) for m in WORKLOADS["signup"].make_messages(n, seed=seed)]

    def _stack(self, tag: str):
        ledger = Ledger(self.workdir / f"{self.stack_name}-{self.mode}-{tag}.db")
        ledger.reset()  # a measurement never sees an earlier one's rows
        return load_stack(self.stack_name)(self.settings, ledger.path), ledger

    def backlog_run(self, seed: int) -> dict[str, float]:
        """Publish N with no worker running, then start workers and time the backlog's processing."""
        stack, ledger = self._stack(f"backlog-{seed}")
        # Built before timing, from one batch so warm-up and measured keys never collide
        # (the idempotency guard would rightly swallow a repeated key).
        warm, envelopes = split(self.envelopes(self.cfg.warmup + self.cfg.n, seed), self.cfg.warmup)
        stack.reset()
        stack.start(["signup"], self.cfg.options)
        try:
            stack.publish("signup", warm)
            wait_for(lambda: ledger.count("effects") >= len(warm), timeout=120, what="the warm-up batch")
            workers_down(stack, self.cfg.workers)  # the backlog builds up untouched
            t0 = time.monotonic()
            report = stack.publish("signup", envelopes)
            publish_s = time.monotonic() - t0
            workers_up(stack, self.cfg.workers)
            keys = {e.key for e in envelopes}
            wait_for(lambda: ledger.count("effects") >= len(warm) + len(envelopes), timeout=600,
                     what=f"{len(envelopes)} effects", interval=0.1)
            effects = [e for e in ledger.effects(service="signup") if e.key in keys]
            attempts = [a for a in ledger.attempts(service="signup") if a.key in keys]
            window = max(e.finished_at for e in effects) - min(a.started_at for a in attempts)
            size = sum(len(encode(e)) for e in envelopes) / len(envelopes)
            return {"publish_rate": report.confirmed / publish_s, "rate": len(effects) / window,
                    "bytes_rate": len(effects) * size / window, "message_bytes": size}
        finally:
            stack.stop()

    def latency_run(self) -> dict[str, float]:
        """A paced stream below capacity: publish -> effect latency, queueing excluded as far as possible."""
        stack, ledger = self._stack("latency")
        envelopes = self.envelopes(self.cfg.latency_n, 777)
        stack.reset()
        stack.start(["signup"], self.cfg.options)
        try:
            warm, envelopes = split(envelopes, 5)  # the first deliveries after a group forms are excluded
            stack.publish("signup", warm)
            wait_for(lambda: ledger.count("effects") >= len(warm), timeout=60, what="latency warm-up")
            gap = 1.0 / self.cfg.latency_rate
            start = time.monotonic()
            for i, env in enumerate(envelopes):
                stack.publish("signup", [make_envelope(env.body, env.headers)])  # sent_at = now
                lag = start + (i + 1) * gap - time.monotonic()
                if lag > 0:
                    time.sleep(lag)  # pacing the producer is what this run measures against
            keys = {e.key for e in envelopes}
            wait_for(lambda: ledger.count("effects") >= len(warm) + len(envelopes), timeout=120,
                     what="latency run effects")
            return percentiles([e.finished_at - e.sent_at for e in ledger.effects(service="signup") if e.key in keys])
        finally:
            stack.stop()



def harness_cost(workdir: Path, n: int = 2000) -> dict[str, float]:
    """What the kit itself adds per message: ``process()`` with the ledger recording on and off.

    Measured in one process, no broker, same noop envelope the stacks handle; compared
    with each stack's per-message time it shows whether the harness is the bottleneck.
    """
    from queuekit.core.execute import process

    envelopes = [encode(e) for e in (make_envelope(m) for m in WORKLOADS["signup"].make_messages(n, seed=5))]
    costs = {}
    for recording in (True, False):
        with ledger_recording(recording):
            ledger = Ledger(workdir / f"harness-{recording}.db")
            ledger.reset()
            t0 = time.perf_counter()
            for payload in envelopes:
                process(payload, service="signup", worker="bench", ledger=ledger)
            costs["us_per_msg_ledger_on" if recording else "us_per_msg_ledger_off"] = \
                round((time.perf_counter() - t0) / n * 1e6, 1)
    return costs


def run_bench(settings: Settings, cfg: BenchConfig, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"config": asdict(cfg), "machine": machine(settings), "stacks": {}, "baselines": {}}
    slots = cfg.workers * cfg.concurrency
    payload = encode(make_envelope(WORKLOADS["signup"].make_messages(1)[0]))
    bodies = [payload] * cfg.n
    say(f"baseline: raw pika consume+ack, {cfg.n} msgs, {slots} consumers")
    result["baselines"]["rabbitmq"] = _baseline(lambda: rabbitmq_baseline(settings, bodies, slots, cfg.prefetch), cfg)
    say(f"baseline: raw confluent-kafka consume, {cfg.n} msgs, {slots} consumers")
    result["baselines"]["kafka"] = _baseline(lambda: kafka_baseline(settings, bodies, slots), cfg)
    say("harness: process() per message with the ledger recording on and off")
    harness = result["harness"] = harness_cost(workdir)
    for stack in cfg.stacks:
        per_mode: dict[str, Any] = {}
        for mode in cfg.modes:
            say(f"{stack} / {mode}: {cfg.repeats} x {cfg.n} msgs + latency run")
            bench = StackBench(settings, stack, mode, cfg, workdir)
            runs = [bench.backlog_run(seed) for seed in range(cfg.repeats)]
            per_mode[mode] = {
                "rate": spread([r["rate"] for r in runs]),
                "publish_rate": spread([r["publish_rate"] for r in runs]),
                "bytes_rate": spread([r["bytes_rate"] for r in runs]),
                "message_bytes": runs[0]["message_bytes"],
                "latency": bench.latency_run(),
            }
        broker = load_stack(stack).capabilities.broker  # a class: .broker is an instance property
        base = result["baselines"][broker]["rate"]["median"]
        noop = per_mode["noop"]["rate"]["median"]
        per_mode["noop"]["ratio_to_baseline"] = round(noop / base, 3) if base else None
        # Share of this stack's per-message time (at its noop rate, over its slots) spent in the ledger.
        ledger_us = harness["us_per_msg_ledger_on"] - harness["us_per_msg_ledger_off"]
        per_mode["noop"]["ledger_share"] = round(ledger_us / (1e6 * slots / noop), 3) if noop else None
        result["stacks"][stack] = per_mode
    return result


def _baseline(measure: Callable[[], tuple[float, Any]], cfg: BenchConfig) -> dict[str, Any]:
    runs = [measure() for _ in range(cfg.repeats)]
    return {"rate": spread([w.rate for _, w in runs]), "publish_rate": spread([cfg.n / p for p, _ in runs]),
            "received": [w.count for _, w in runs]}


def machine(settings: Settings) -> dict[str, Any]:
    from queuekit import brokers

    return {
        "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu": _cpu_model(),
        "brokers": {s.name: s.version for s in brokers.statuses(settings, ("rabbitmq", "kafka"))},
        "libraries": {lib: version(lib) for lib in ("celery", "kombu", "dramatiq", "pika", "confluent-kafka")},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
