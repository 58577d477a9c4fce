"""``queuekit bench``: what each stack reaches, set against the framework bare, the raw client and the broker's own tool.

Per stack and mode (noop, io, cpu), ``repeats`` times each, in one run:

* stack: the kit's stack (``Stack.publish`` -> worker -> ``core.process``),
  its workers recording completions in memory (``QUEUEKIT_LEDGER_RECORD=timings``;
  scenarios keep the transactional ledger);
* bare: the smallest idiomatic program of the same framework doing the same
  work with the same knobs (the stack's declared ``bare_twin``, a program of the
  top-level ``bare`` package); harness overhead = 1 - stack/bare;
* references: the raw Python client (pika consume+ack, confluent-kafka poll +
  store, redis-py XREADGROUP + XACK), a Kafka consumer written for throughput (batch
  consume, one commit per batch), and the broker's own tool (PerfTest,
  Producer/ConsumerPerformance, redis-benchmark); Redis's only when a stack on Redis is benched.

Rates are steady state (middle 80% of completions of a backlog published
before the workers start), reported as median and min-max over the repeats.
Then, per stack (noop): throughput vs worker processes and vs payload size,
and latency p50/p99 vs offered load at fractions of the stack's measured max
(open loop: a paced producer, latency from the intended send time), with its
raw client's curve at the same rates (``raw_latency``) and median ms per hop of
a sample of messages (``measure.hop_medians``).

Fairness controls, recorded in ``fairness``: the same worker processes x
slots, prefetch, late ack / offset stored after the work, publisher confirms /
acks=all, durable queues + persistent messages, partitions = slots, the same
payload bytes, versions and machine.
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import bare
from queuekit.bench import measure, raw_latency
from queuekit.bench.baselines import kafka_baseline, kafka_batch_baseline, rabbitmq_baseline, redis_baseline
from queuekit.bench.ceilings import ceilings, versions
from queuekit.core.config import Settings
from queuekit.core.envelope import encode
from queuekit.core.options import StackOptions
from queuekit.stacks.registry import framework_stacks, load_stack

MODES = measure.MODES
CALIBRATION_SHARE = 0.5  # a calibration run shorter than this share of noop_seconds is repeated, 10x bigger


@dataclass(frozen=True)
class BenchConfig:
    # noop: each stack's backlog is sized to last about ``noop_seconds`` at the rate a short calibration run
    # of that stack reached (its bare twin gets the same backlog), within [n_min, n_max]. One fixed count did
    # not fit all: 3,000 messages were 0.2 s of a stream consumer and 100,000 were 60 s of a share group.
    noop_seconds: float = 4.0
    n_min: int = 2000
    n_max: int = 400_000  # ~2.6 s of the kafka stack's noop, ~3 s of a share group's batch consumer
    n_calibrate: int = 2000  # the calibration run (0: no calibration, every noop run uses n_max)
    # io and cpu modes: 4 slots x 5 ms caps them near 800 msgs/s; CPU per message is their number. 2,000, not 800:
    # 800 were 1 s, in which the kafka stack's members (not gated as its bare twin's) were still joining (io 401
    # msgs/s against the bare twin's 775)
    n_slow: int = 2000
    raw_n_rabbitmq: int = 5000  # a reference: 10k took ~1 min per repeat on a busy machine (confirm per publish)
    raw_n_kafka: int = 400_000  # ~0.5 s of the raw poll loop once its start gate opens (baselines.Member)
    raw_n_redis: int = 50000  # only when a stack on Redis is benched (``on_redis``)
    repeats: int = 3
    workers: int = 2
    concurrency: int = 2
    prefetch: int = 4
    modes: tuple[str, ...] = tuple(MODES)
    # one stack per framework (no declared variant_of): variants (celery_quorum, celery_kafka, ...) with --stack
    stacks: tuple[str, ...] = field(default_factory=framework_stacks)
    ceiling_seconds: int = 8  # PerfTest's consumers drain its backlog this long
    ceiling_backlog: int = 100_000  # PerfTest's backlog, published first: it must outlast the drain (~5-10k/s)
    ceiling_records: int = 500000
    ceiling_min_seconds: float = 10.0  # ConsumerPerformance reads at least this long after the join
    scaling_workers: tuple[int, ...] = (1, 2, 4)
    scaling_sizes: tuple[int, ...] = (10_000, 100_000)  # beside the natural ~210 B envelope
    loads: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    latency_seconds: float = 4.0
    latency_max_messages: int = 20_000  # per point: a fast stack's point lasts less than latency_seconds

    @classmethod
    def quick(cls) -> BenchConfig:
        """About two minutes: one repeat, noop only, one point per curve (CI: shape, not numbers)."""
        return cls(n_min=500, n_max=2000, n_calibrate=0, raw_n_rabbitmq=2000, raw_n_kafka=30000, raw_n_redis=10000,
                   repeats=1,
                   modes=("noop",), ceiling_seconds=3, ceiling_backlog=15_000, ceiling_records=50000,
                   ceiling_min_seconds=0.0, scaling_workers=(1,),
                   scaling_sizes=(), loads=(0.5,), latency_seconds=2.0)

    @property
    def on_redis(self) -> bool:
        """Is a stack on Redis benched? Then Redis gets its raw client and its tool beside RabbitMQ's and Kafka's."""
        return any(load_stack(s).capabilities.broker == "redis" for s in self.stacks)

    @property
    def slots(self) -> int:
        return self.workers * self.concurrency

    def options(self, workers: int | None = None, overrides: dict[str, Any] | None = None) -> StackOptions:
        workers = workers or self.workers
        return StackOptions(workers=workers, concurrency=self.concurrency, prefetch=self.prefetch,
                            partitions=workers * self.concurrency,  # partitions = consumer slots
                            task_events=False, loglevel="WARNING",  # Celery: as the bare app
                            **(overrides or {}))  # a stack's throughput_options

    def count(self, mode: str, noop_rate: float | None = None, size: int | None = None) -> int:
        """Messages per measurement: io/cpu a fixed backlog; noop sized by the stack's calibrated rate."""
        if mode != "noop":
            n = self.n_slow
        elif noop_rate:
            n = min(self.n_max, max(self.n_min, int(round(noop_rate * self.noop_seconds, -2))))
        else:
            n = self.n_max
        return min(n, max(300, 50_000_000 // size)) if size else n  # big payloads: ~50 MB per backlog


def run_bench(settings: Settings, cfg: BenchConfig, workdir: Path, say: Callable[[str], None],
              checkpoint: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """The whole bench; ``checkpoint`` gets the result so far after each stack (a later failure keeps it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    size = len(encode(measure.envelopes(1, "noop", None, 0)[0]))
    result: dict[str, Any] = {"config": asdict(cfg), "machine": machine(settings), "fairness": fairness(cfg, size),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": os.getloadavg()}
    result["ceilings"] = ceilings(settings, slots=cfg.slots, prefetch=cfg.prefetch, size=size,
                                  seconds=cfg.ceiling_seconds, records=cfg.ceiling_records, say=say,
                                  backlog=cfg.ceiling_backlog, min_seconds=cfg.ceiling_min_seconds,
                                  redis=cfg.on_redis)
    result["raw"] = raw_clients(settings, cfg, size, say)
    result["stacks"] = {}
    took = result["part_seconds"] = {"ceilings+raw": round(time.monotonic() - started, 1)}

    @contextmanager
    def timed(part: str) -> Iterator[None]:  # how long each part took, in the JSON (where the minutes go)
        t0 = time.monotonic()
        yield
        took[part] = round(time.monotonic() - t0, 1)

    for stack in cfg.stacks:
        per_stack: dict[str, Any] = {"modes": {}}
        result["stacks"][stack] = per_stack
        with timed(f"{stack}/calibration"):
            per_stack["calibration"] = calibrate(settings, cfg, stack, workdir, say)
        for mode in cfg.modes:
            with timed(f"{stack}/{mode}"):
                per_stack["modes"][mode] = stack_vs_bare(settings, cfg, stack, mode, workdir, say,
                                                         per_stack["calibration"]["rate"])
        if overrides := load_stack(stack).throughput_options:  # the stack written for throughput, beside it
            row = "noop " + " ".join(f"{k}={v}" for k, v in overrides.items())
            with timed(f"{stack}/{row}"):  # calibrated on its own: a backlog sized for the default lasts no time
                rate = calibrate(settings, cfg, stack, workdir, say, overrides)["rate"]
                per_stack["modes"][row] = stack_vs_bare(settings, cfg, stack, "noop", workdir, say, rate, overrides)
        per_stack["references"] = references(result, stack)
        with timed(f"{stack}/scaling"):
            per_stack["scaling"] = scaling(settings, cfg, stack, per_stack["modes"]["noop"], workdir, say)
        with timed(f"{stack}/latency"):
            per_stack["latency"] = latency_curve(settings, cfg, stack, per_stack["modes"]["noop"]["stack"], workdir,
                                                 say)
        checkpoint(result)
    with timed("raw latency"):
        raw_latency_curves(settings, cfg, result, workdir, say)
    checkpoint(result)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["load_after"] = os.getloadavg()
    return result


def calibrate(settings: Settings, cfg: BenchConfig, stack: str, workdir: Path,
              say: Callable[[str], None], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One short noop run of the stack: its rate sizes the noop backlogs (not reported as a result)."""
    if not cfg.n_calibrate:
        return {"n": 0, "rate": None}
    n = cfg.n_calibrate
    while True:
        say(f"{stack}{f' {overrides}' if overrides else ''}: calibrating the noop backlog with {n} msgs")
        run = measure.stack_backlog(settings, stack, cfg.options(overrides=overrides),
                                    measure.envelopes(n, "noop", None, 99), workdir)
        # A backlog drained in less than half of noop_seconds measured the workers' start as much as their
        # rate: the 2,000-record calibration of the kafka stack read 1,577 msgs/s with 1 of 4 slots working
        # (the group's join), and 100,000 records (1.7 s) 57,000 msgs/s with members joining one by one,
        # against 155,000 over 300,000 records (CPU per record 13.9 µs and 11.1). Such a run is repeated
        # with ten times the backlog, up to n_max; a slower stack's run that took its time is kept (rq's,
        # one slot per process, too).
        lasted = n / max(run["rate"], 1.0)
        if n >= cfg.n_max or lasted >= cfg.noop_seconds * CALIBRATION_SHARE:
            return {"n": n, "rate": round(run["rate"], 1), "slots": run["slots"]}
        n = min(cfg.n_max, n * 10)


def stack_vs_bare(settings: Settings, cfg: BenchConfig, stack: str, mode: str, workdir: Path,
                  say: Callable[[str], None], noop_rate: float | None = None,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stack against its bare twin; with ``overrides`` (its ``throughput_options``) the stack alone, so run."""
    n = cfg.count(mode, noop_rate)
    options = cfg.options(overrides=overrides)
    twin = None if overrides else load_stack(stack).bare_twin  # None: no bare program to compare (the stack alone)
    say(f"{stack} / {mode}{f' {overrides}' if overrides else ''}: {cfg.repeats} x "
        f"(stack{f', bare twin {twin}' if twin else ''}) x {n} msgs")
    runs: dict[str, list[dict]] = {"stack": [], "bare": []}
    for seed in range(cfg.repeats):  # interleaved, so a noisy neighbour hits both alike
        envs = measure.envelopes(n, mode, None, seed)
        runs["stack"].append(measure.stack_backlog(settings, stack, options, envs, workdir))
        if twin:
            runs["bare"].append(measure.bare_backlog(settings, twin, cfg.options(), envs, workdir))
    for kind, rs in runs.items():  # every slot must have worked, or the comparison is not like for like
        if short := [r["slots"] for r in rs if r["slots"] < cfg.slots]:
            say(f"{stack} / {mode}: {kind} had only {short} of {cfg.slots} slots working "
                f"(a worker died, or a group member never got a partition; logs: {workdir / 'logs'})")
    out: dict[str, Any] = {kind: {key: measure.spread([r[key] for r in rs])
                                  for key in ("rate", "cpu_us", "publish_rate", "window_share", "slots")}
                           if rs else None for kind, rs in runs.items()}
    out["n"] = n
    out["overhead"] = out["overhead_cpu"] = None
    if twin:
        bare_rate = out["bare"]["rate"]["median"]
        out["overhead"] = round(1 - out["stack"]["rate"]["median"] / bare_rate, 3) if bare_rate else None  # <= 0.05
        # The same in worker CPU per message: what the harness adds, least distorted by other load on the machine.
        cpu = out["stack"]["cpu_us"]["median"]
        out["overhead_cpu"] = round(1 - out["bare"]["cpu_us"]["median"] / cpu, 3) if cpu else None
    return out


def raw_clients(settings: Settings, cfg: BenchConfig, size: int, say: Callable[[str], None]) -> dict[str, Any]:
    payload = encode(measure.envelopes(1, "noop", None, 0)[0])
    out: dict[str, Any] = {}
    for name, n, measure_once in (
        ("rabbitmq", cfg.raw_n_rabbitmq, lambda n: rabbitmq_baseline(settings, [payload] * n, cfg.slots, cfg.prefetch)),
        ("kafka", cfg.raw_n_kafka, lambda n: kafka_baseline(settings, [payload] * n, cfg.slots)),
        ("kafka_batch", cfg.raw_n_kafka, lambda n: kafka_batch_baseline(settings, [payload] * n, cfg.slots)),
        *([("redis", cfg.raw_n_redis, lambda n: redis_baseline(settings, [payload] * n, cfg.slots, cfg.prefetch))]
          if cfg.on_redis else []),
    ):
        say(f"raw client: {name}, {cfg.repeats} x {n} msgs, {cfg.slots} consumer processes")
        runs = [measure_once(n) for _ in range(cfg.repeats)]
        out[name] = {"rate": measure.spread([w.rate for _, w in runs]),
                     "publish_rate": measure.spread([n / p for p, _ in runs]), "n": n,
                     "window_share": [round(w.window_share, 3) for _, w in runs],
                     "received": [w.count for _, w in runs]}
    raw = out["kafka"]["rate"]["median"]
    out["kafka_batch"]["ratio_to_raw"] = round(out["kafka_batch"]["rate"]["median"] / raw, 3) if raw else None
    return out


def references(result: dict[str, Any], stack: str) -> dict[str, Any]:
    """The stack's noop rate against its broker's tool, its raw client and its bare framework."""
    broker = load_stack(stack).capabilities.broker
    mine = result["stacks"][stack]["modes"]["noop"]
    rate = mine["stack"]["rate"]["median"]
    tool, raw = result["ceilings"].get(broker), result["raw"].get(broker)  # None: not measured for this broker (Redis yet)
    refs = {"broker_tool": tool["rate"] if tool else None, "raw_client": raw["rate"]["median"] if raw else None,
            "bare_framework": mine["bare"]["rate"]["median"] if mine["bare"] else None}
    return {name: {"rate": ref, "stack_ratio": round(rate / ref, 4) if ref else None} for name, ref in refs.items()}


def scaling(settings: Settings, cfg: BenchConfig, stack: str, noop: dict, workdir: Path,
            say: Callable[[str], None]) -> dict[str, Any]:
    """noop throughput vs worker processes and vs payload size (one run per point; the default point reused)."""
    base = noop["stack"]
    natural = {"rate": base["rate"]["median"]}
    by_workers: dict[str, Any] = {}
    by_size: dict[str, Any] = {"natural": natural}
    for workers in cfg.scaling_workers:
        if workers == cfg.workers:
            by_workers[str(workers)] = natural
            continue
        n = noop["n"]
        say(f"{stack} scaling: {workers} worker processes x {cfg.concurrency} slots, {n} msgs")
        by_workers[str(workers)] = measure.stack_backlog(settings, stack, cfg.options(workers),
                                                         measure.envelopes(n, "noop", None, 100 + workers), workdir)
    for size in cfg.scaling_sizes:
        n = cfg.count("noop", base["rate"]["median"] or None, size)
        say(f"{stack} scaling: {size} B payload, {n} msgs")
        run = measure.stack_backlog(settings, stack, cfg.options(), measure.envelopes(n, "noop", size, 200), workdir)
        by_size[str(size)] = {**run, "bytes_rate": run["rate"] * size}
    return {"workers": by_workers, "payload_bytes": by_size}


def latency_rates(cfg: BenchConfig, base: dict) -> list[float]:
    """The offered rates of a stack's curve: ``cfg.loads`` of its measured noop max."""
    return [max(1.0, load * base["rate"]["median"]) for load in cfg.loads]


def latency_curve(settings: Settings, cfg: BenchConfig, stack: str, base: dict, workdir: Path,
                  say: Callable[[str], None]) -> list[dict[str, Any]]:
    top = base["rate"]["median"]
    rates = latency_rates(cfg, base)
    say(f"{stack} latency: offered {', '.join(f'{r:.0f}' for r in rates)} msgs/s "
        f"({', '.join(f'{load:.0%}' for load in cfg.loads)} of {top:.0f}), {cfg.latency_seconds:.0f} s "
        f"or {cfg.latency_max_messages:,} msgs each, whichever is fewer")
    points = measure.open_loop(settings, stack, cfg.options(), rates, cfg.latency_seconds, workdir, 300,
                               cfg.latency_max_messages)
    return [{"load": load, **point} for load, point in zip(cfg.loads, points)]


def raw_family(stack: str) -> str:
    """The raw client family a stack's latency is set against (``Stack.raw_reference``, else its broker)."""
    declared = load_stack(stack)
    return declared.raw_reference or declared.capabilities.broker


def raw_latency_curves(settings: Settings, cfg: BenchConfig, result: dict[str, Any], workdir: Path,
                       say: Callable[[str], None]) -> None:
    """Each stack's ``raw_latency``: its raw client at the stack's own offered rates, paced by the same code.

    One session per family (one start, one warm-up) runs the points of every stack it is the reference for,
    in turn; each stack gets its own points back, with the same ``load`` labels as its curve."""
    by_family: dict[str, list[str]] = {}
    for stack in result["stacks"]:
        by_family.setdefault(raw_family(stack), []).append(stack)
    for family, stacks in by_family.items():
        rates = {s: latency_rates(cfg, result["stacks"][s]["modes"]["noop"]["stack"]) for s in stacks}
        every = [r for s in stacks for r in rates[s]]
        say(f"raw {raw_latency.RUNS[family].client} latency (for {', '.join(stacks)}): offered "
            f"{', '.join(f'{r:.0f}' for r in every)} msgs/s")
        out = raw_latency.curve(settings, family, every, cfg.latency_seconds, workdir, 400, cfg.latency_max_messages,
                                cfg.slots, cfg.prefetch, cfg.workers)
        points = iter(out.pop("points"))
        for s in stacks:
            result["stacks"][s]["raw_latency"] = {**out, "points": [{"load": load, **next(points)}
                                                                    for load in cfg.loads]}


def fairness(cfg: BenchConfig, size: int) -> dict[str, Any]:
    return {
        "worker_processes": cfg.workers, "slots_per_process": cfg.concurrency, "consumer_slots": cfg.slots,
        "prefetch": cfg.prefetch, "partitions": cfg.slots, "payload_bytes": size,
        "acks": "after the work: Celery acks_late, Dramatiq's ack after the actor, Kafka offset stored after",
        "confirms": "RabbitMQ publisher confirms on every publish; Kafka acks=all, idempotent producer",
        "persistence": "durable classic queues, persistent messages (delivery_mode 2); Kafka topic replication 1",
        "publishers": f"RabbitMQ: {bare.PUBLISHERS} confirmed publisher threads (stacks, bare twins, raw pika); "
                      "Kafka: one async producer",
        "monitoring": "Celery: no task events (Flower), worker log level WARNING, in stack and bare alike",
        "recording": "stack and bare: one completion timestamp per message kept in memory (core/timings.py)",
        "steady_state": f"rate over the middle {1 - 2 * measure.TRIM:.0%} of completions of a pre-published backlog",
        "raw_latency": "raw clients paced by the same schedule code at each stack's offered rates; per message: "
                       "decode the JSON, record the completion, ack / store / XACK (no validation, no idempotency "
                       "guard, no dead letters, no framework)",
        "start": "bare Kafka members hold their partitions paused until the whole group is assigned (start gate); "
                 "the stacks and the other twins consume from the moment they are ready",
    }


def machine(settings: Settings) -> dict[str, Any]:
    from queuekit import brokers

    return {
        "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu": _cpu_model(),
        "brokers": {s.name: s.version for s in brokers.statuses(settings, ("rabbitmq", "kafka"))},
        "libraries": {lib: version(lib) for lib in ("celery", "kombu", "dramatiq", "pika", "confluent-kafka")},
        "tools": versions(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


__all__ = ["BenchConfig", "run_bench"]
