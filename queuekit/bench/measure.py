"""One measurement: a backlog drained by a stack or its bare twin, or a paced open-loop stream through a stack.

Rates are steady-state: taken while every consumer slot was working
(``steady_window``) and between the ``TRIM`` and ``1 - TRIM`` quantiles of
completions, so worker start-up, group joins and the last stragglers (one
partition draining alone) are outside the window.
Stack and bare record completions the same way (``queuekit.core.timings``).
"""
from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import bare
from queuekit.bench import twins
from queuekit.core.config import Settings
from queuekit.core.envelope import MAX_STRING, Envelope, encode, make_envelope
from queuekit.core.ledger import RECORD_ENV, TIMINGS, Ledger
from queuekit.core.options import StackOptions
from queuekit.core.timings import HOP_EVERY, collect, count, read_hops
from queuekit.core.waiting import wait_for
from queuekit.stacks.registry import load_stack
from workloads import WORKLOADS

MODES: dict[str, dict[str, Any]] = {
    "noop": {},  # the framework's own cost: decode, record, ack
    "io": {"fault": "slow", "seconds": 0.005},  # 5 ms waiting on I/O per message
    "cpu": {"fault": "cpu", "rounds": 2600},  # ~2 ms of hashing per message
}
TRIM = 0.1  # steady state: the middle 80% of completions


def first_completions(rows: list[tuple]) -> list[tuple]:
    """One row per message: its first completion. A stream stack's workers are not competing consumers (each
    reads every message: ``Capabilities.competing_consumers``), and a redelivery completes a message twice;
    throughput and latency are about messages done, not deliveries."""
    first: dict[str, tuple] = {}
    for r in rows:
        if r[0] not in first or r[3] < first[r[0]][3]:
            first[r[0]] = r
    return list(first.values())


def steady_window(rows: list[tuple], trim: float = TRIM) -> tuple[float, float]:
    """The stretch in which every consumer slot that did any work was doing it, inside the trimmed quantiles.

    Rows are timings rows (``core/timings.collect``): a slot is (pid, thread). Workers and group members
    start one after another: until the last slot has completed its first message, the others are racing
    through the backlog with fewer hands than configured, and the rate says more about start-up order than
    about the framework. Likewise once the first slot has run dry. So: from the latest first completion of
    any slot to the earliest last one. Where that holds under half of the trimmed window's completions (a
    Kafka member can drain its partition before the last member has joined), the trimmed window is used.
    """
    ordered = sorted(r[3] for r in rows)
    if len(ordered) < 10:
        return 0.0, 0.0
    lo, hi = ordered[int(trim * len(ordered))], ordered[int((1 - trim) * len(ordered)) - 1]
    first: dict[tuple, float] = {}
    last: dict[tuple, float] = {}
    for r in rows:
        slot = (r[-1], r[-2])
        first[slot] = min(first.get(slot, r[3]), r[3])
        last[slot] = max(last.get(slot, r[3]), r[3])
    start, end = max(lo, *first.values()), min(hi, *last.values())
    inside = sum(1 for t in ordered if start < t <= end)
    return (start, end) if inside >= 0.5 * (1 - 2 * trim) * len(ordered) else (lo, hi)


def steady(rows: list[tuple], trim: float = TRIM) -> dict[str, float]:
    """A run's numbers from its timings rows, all inside one ``steady_window`` of its first completions:
    ``rate`` (messages completed per second), ``cpu_us`` (worker CPU per message), ``window_share`` (how
    much of the backlog the window holds: a small share means the run was mostly start-up and its rate
    should not be quoted) and ``slots`` (how many (process, thread) slots did any work)."""
    firsts = first_completions(rows)
    lo, hi = steady_window(firsts, trim)
    inside = sum(1 for r in firsts if lo < r[3] <= hi) if hi > lo else 0
    return {"rate": inside / (hi - lo) if hi > lo else 0.0, "cpu_us": _cpu_us(rows, lo, hi),
            "window_share": round(inside / len(firsts), 3) if firsts else 0.0,
            "slots": len({(r[-1], r[-2]) for r in rows})}


def _cpu_us(rows: list[tuple], lo: float, hi: float) -> float:
    """Worker CPU microseconds per message between ``lo`` and ``hi``, summed over worker processes.

    Rows are (key, sent_at, started_at, finished_at, process_cpu_s or None, thread, pid): per process, the
    CPU between its first and last CPU sample in the window, over the completions in between; times the
    deliveries per message (2 when every one of 2 workers handles every message), so it is per message.
    """
    if hi <= lo:
        return 0.0
    copies = len(rows) / max(1, len({r[0] for r in rows}))

    def per_message(lo: float, hi: float) -> float:
        cpu = done = 0.0
        for pid in {r[-1] for r in rows}:
            mine = sorted((r[3], r[4]) for r in rows if r[-1] == pid and lo <= r[3] <= hi)
            sampled = [i for i, (_, process_cpu) in enumerate(mine) if process_cpu is not None]
            if len(sampled) > 1:
                cpu += mine[sampled[-1]][1] - mine[sampled[0]][1]
                done += sampled[-1] - sampled[0]
        return cpu / done * 1e6 * copies if done else 0.0

    # A window shorter than two CPU samples (CPU_EVERY_S apart: a quick run of a fast consumer drains its
    # backlog in milliseconds, seen in CI for the bare Kafka twin) has no CPU reading of its own: the whole run's
    return per_message(lo, hi) or per_message(float("-inf"), float("inf"))


def spread(values: list[float]) -> dict[str, Any]:
    med = statistics.median(values)
    return {"median": round(med, 1), "min": round(min(values), 1), "max": round(max(values), 1), "runs": len(values),
            "spread": round((max(values) - min(values)) / med, 3) if med else None}  # (max - min) / median


def percentiles(samples: list[float]) -> dict[str, float | None]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "samples": 0}
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)  # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "samples": len(ordered)}


def envelopes(n: int, mode: str, size: int | None, seed: int) -> list[Envelope]:
    """``n`` signups with the mode's directive; ``size`` pads the encoded envelope to about that many bytes."""
    headers = dict(MODES[mode])
    envs = [make_envelope(m, headers) for m in WORKLOADS["signup"].make_messages(n, seed=seed)]
    if size:
        # Padding in strings of at most MAX_STRING characters: one 100 KB string is malformed to the kit
        # (the hostile-input limits) and would be dead-lettered, never completed.
        chunk = MAX_STRING - 24
        pad_chars = max(0, size - len(encode(envs[0])) - len(',"pad":[]'))
        full, rest = divmod(pad_chars, chunk + 3)  # + 3: the quotes and the comma of each string
        pad = ["x" * chunk] * full + (["x" * max(0, rest - 3)] if rest >= 3 else [])
        envs = [make_envelope(e.body, {**headers, "pad": pad}, id=e.id, sent_at=e.sent_at) for e in envs]
    return envs


@contextmanager
def timings_recording() -> Iterator[None]:
    """Workers inherit this process's environment: their ledger keeps timestamps in memory (core/timings.py)."""
    old = os.environ.get(RECORD_ENV)
    os.environ[RECORD_ENV] = TIMINGS
    try:
        yield
    finally:
        os.environ.pop(RECORD_ENV, None) if old is None else os.environ.__setitem__(RECORD_ENV, old)


def _published(report_or_none) -> int:
    return getattr(report_or_none, "confirmed", 0)


class StackRun:
    """A stack with a fresh ledger path whose workers record timings; started with the given options
    (``workers=False``: declared, publishing works, no worker yet)."""

    def __init__(self, settings: Settings, stack: str, options: StackOptions, workdir: Path, workers: bool = True):
        self.ledger = Ledger(workdir / f"{stack}-{uuid.uuid4().hex[:8]}.db")
        self.timings_dir = Path(f"{self.ledger.path}.timings")
        self.stack = load_stack(stack)(settings, self.ledger.path)
        self.options = options
        self.workers = workers
        # Deliveries per message: every worker process of a non-competing stack (a 3.10 stream) reads all.
        self.copies = 1 if self.stack.capabilities.competing_consumers else options.workers
        self.encoded = False  # Stack.publish takes envelopes

    def __enter__(self) -> StackRun:
        with timings_recording():
            self.stack.reset()
            (self.stack.start if self.workers else self.stack.prepare)(["signup"], self.options)
        return self

    def __exit__(self, *exc) -> None:
        self.stack.stop()

    @property
    def publishers(self) -> int:
        """RabbitMQ stacks wait for each confirm: several threads share the broker's fsyncs. Kafka's
        producer is asynchronous already (one thread, flushed per publish call)."""
        return 1 if self.stack.broker == "kafka" else bare.PUBLISHERS

    def publish(self, envs: list[Envelope]) -> int:
        """Confirmed publishes, from ``publishers`` threads (the stacks' publish is thread-safe)."""
        return sum(_published(r) for r in bare.in_parallel(lambda part: self.stack.publish("signup", part), envs,
                                                            self.publishers))

    def send(self, thread: int, plan: Plan, batch: list[int]) -> object:
        return self.stack.publish("signup", [plan.envelopes[i] for i in batch])

    def key(self, env: Envelope) -> str:
        return env.body.idempotency_key  # what ``core.process`` records

    def hops(self) -> dict[str, tuple[float | None, float | None]]:
        return read_hops(self.timings_dir)  # from adapters that stamp deliveries (core.timings.delivery)

    def wait(self, n: int, timeout: float = 600) -> list[tuple]:
        """Until ``n`` messages were completed (by every worker that handles each) since the start; every row."""
        wait_for(lambda: count(self.timings_dir) >= n * self.copies, timeout=timeout, interval=0.1,
                 what=f"{n} x {self.copies} completions from {self.stack.name} "
                      f"(logs: {self.ledger.path.parent / 'logs'})")
        return collect(self.timings_dir)


def workers_join(stack, count: int) -> None:
    """``count`` new workers started together (as the bare twins are), then waited for: ``add_worker``
    would start them one by one, and each join would move partitions inside the measured window."""
    for index in range(count):
        stack._spawn(index)  # the template's own spawn step (Stack.start uses the same two)
    stack.wait_workers_ready()


def stack_backlog(settings: Settings, stack: str, options: StackOptions, envs: list[Envelope],
                  workdir: Path) -> dict[str, float]:
    """Publish ``envs`` while no worker runs, then start the workers and time the backlog's processing."""
    with StackRun(settings, stack, options, workdir, workers=False) as run:  # the backlog builds up untouched
        t0 = time.monotonic()
        confirmed = run.publish(envs)
        publish_s = time.monotonic() - t0
        with timings_recording():
            workers_join(run.stack, options.workers)
        rows = run.wait(len(envs))
    return {**steady(rows), "publish_rate": confirmed / publish_s}


def bare_backlog(settings: Settings, twin: str, options: StackOptions, envs: list[Envelope],
                 workdir: Path) -> dict[str, float]:
    """The same backlog through the stack's declared bare twin (``Stack.bare_twin``)."""
    payloads = [encode(e).decode() for e in envs]
    keys = [e.body.partition_key.encode() for e in envs]
    publish_s, rows = twins.run(twin, settings, payloads, keys, options, workdir)
    return {**steady(rows), "publish_rate": len(envs) / publish_s}


WARMUP_S = 2.0  # a paced point before the curve, not reported
SAMPLE_EVERY = HOP_EVERY  # hop timestamps on 1 message in 50, as the stamping adapters sample
HOP_HEADER = "hop"  # a sampled message's header, for raw consumers (a stack's adapter never reads it)
HOPS = ("intended", "published", "appended", "fetched", "started", "completed")  # a message's stamps, in order


class Paced(Protocol):
    """What a paced point drives: a stack (``StackRun``) or a raw client pair (``raw_latency.RawRun``)."""

    timings_dir: Path
    copies: int  # completions per message (every reader of a non-competing stream records each)
    encoded: bool  # sends bytes built before the clock (a raw client) or envelopes (a stack's publish encodes)

    @property
    def publishers(self) -> int: ...  # producer threads; thread k owns every k-th slot of the schedule

    def send(self, thread: int, plan: Plan, batch: list[int]) -> object: ...
    def key(self, env: Envelope) -> str: ...  # the key its timings rows carry for this envelope
    def wait(self, n: int, timeout: float = 600) -> list[tuple]: ...
    def hops(self) -> dict[str, tuple[float | None, float | None]]: ...  # key -> (appended, fetched), sampled


@dataclass
class Plan:
    """One point's schedule, built before its clock starts: message i is due at ``planned[i]``, its envelope
    stamped with that time (``sent_at``); for a raw client every ``SAMPLE_EVERY``-th one carries the
    ``HOP_HEADER`` that asks its consumer for hop timestamps."""

    start: float
    planned: list[float]
    envelopes: list[Envelope]
    payloads: list[bytes]  # encoded, for raw clients (empty for a stack: its publish encodes)
    published: dict[int, float] = field(default_factory=dict)  # index -> when its publish call began


def plan(rate: float, seconds: float, seed: int, max_messages: int, encoded: bool = False) -> Plan:
    n = min(max_messages, max(20, int(rate * seconds)))
    bodies = [e.body for e in envelopes(n, "noop", None, seed)]
    start = time.time() + 0.5 + n * (4e-5 if encoded else 2e-5)  # after the envelopes below are built
    planned = [start + i / rate for i in range(n)]
    # Built before the clock starts, each stamped with its slot on the schedule.
    scheduled = [make_envelope(body, {HOP_HEADER: 1} if encoded and i % SAMPLE_EVERY == 0 else None, sent_at=at)
                 for i, (body, at) in enumerate(zip(bodies, planned))]
    return Plan(start, planned, scheduled, [encode(e) for e in scheduled] if encoded else [])


def play(run: Paced, schedule: Plan) -> tuple[float, list[float]]:
    """Send ``schedule`` on time from ``run.publishers`` threads: (seconds sending, how late each send began)."""
    n = len(schedule.planned)
    planned = schedule.planned
    sent_late: list[float] = []

    def producer(k: int) -> None:
        mine = list(range(k, n, run.publishers))
        while mine:
            now = time.time()
            due = 0
            while due < len(mine) and planned[mine[due]] <= now:
                due += 1
            if not due:
                time.sleep(planned[mine[0]] - now)  # pacing IS the measurement's input
                continue
            batch, mine = mine[:due], mine[due:]
            sent_late.append(now - planned[batch[0]])  # how far behind schedule this send started
            for i in batch:  # every one: an adapter samples by its broker position, not by this index
                schedule.published[i] = now  # the hop "published": when its publish call began
            run.send(k, schedule, batch)  # everything due, in one call

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(run.publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.time() - schedule.start, sent_late


def hop_medians(run: Paced, schedule: Plan, rows: list[tuple]) -> dict[str, Any]:
    """Median milliseconds between consecutive stamps (``HOPS``) of the sampled messages: those a consumer
    stamped (``run.hops``: a raw consumer's flagged ones, a stamping adapter's 1 in ``HOP_EVERY``), else
    every ``SAMPLE_EVERY``-th of the schedule. A stamp this client cannot see (RabbitMQ has no append
    time; a framework's fetch is inside it) is skipped, so its hop spans the gap ("published->started").
    Broker stamps have millisecond resolution."""
    by_key = {r[0]: r for r in rows}
    seen = run.hops()
    index = {run.key(env): i for i, env in enumerate(schedule.envelopes)}
    keys = [k for k in seen if k in index] or [run.key(schedule.envelopes[i])
                                                for i in range(0, len(schedule.envelopes), SAMPLE_EVERY)]
    chains = []
    for key in keys:
        i = index[key]
        if key not in by_key or i not in schedule.published:
            continue
        appended, fetched = seen.get(key, (None, None))
        chains.append((schedule.planned[i], schedule.published[i], appended, fetched, by_key[key][2], by_key[key][3]))
    gaps: dict[str, list[float]] = {}
    for chain in chains:
        stamps = [(name, t) for name, t in zip(HOPS, chain) if t is not None]
        for (a, ta), (b, tb) in zip(stamps, stamps[1:]):
            gaps.setdefault(f"{a}->{b}", []).append(tb - ta)
    return {"sampled": len(chains), "every": SAMPLE_EVERY,
            "median_ms": {hop: round(statistics.median(d) * 1000, 2) for hop, d in gaps.items()}}


def open_loop(settings: Settings, stack: str, options: StackOptions, rates: list[float], seconds: float,
              workdir: Path, seed: int, max_messages: int = 20_000) -> list[dict[str, Any]]:
    """Each rate in turn on the same running workers (one start, not one per point): see ``paced``."""
    with StackRun(settings, stack, options, workdir) as run:
        return curve(run, rates, seconds, seed, max_messages)


def curve(run: Paced, rates: list[float], seconds: float, seed: int, max_messages: int) -> list[dict[str, Any]]:
    """First a warm-up at the lowest rate, discarded: the first point after the workers start paid for the
    start itself (the producer's first connection, the group's first fetches). Seen for kafka at 7,000
    msgs/s, the same rate twice in a row: p50 373 ms with the producer 509 ms late, then 4 ms — the
    committed curve's 106 ms at 25% load was its first point."""
    if rates:
        paced(run, min(rates), WARMUP_S, seed - 1, max_messages)  # warm-up: not a point of the curve
    return [paced(run, rate, seconds, seed + i, max_messages) for i, rate in enumerate(rates)]


def paced(run: Paced, rate: float, seconds: float, seed: int, max_messages: int = 20_000) -> dict[str, Any]:
    """Offer ``rate`` msgs/s for ``seconds`` on a fixed schedule; latency from each message's INTENDED send time.

    At most ``max_messages`` (fewer seconds at a high rate): 20,000 samples put p99 on 200 of them, and a
    Kafka point at 90% of ~25k msgs/s would otherwise build and send 100k envelopes for one point.

    Each message's ``sent_at`` is its slot on the schedule, not the moment it left: a producer
    held up by a slow broker sends late and that delay counts (no coordinated omission). Each of
    ``run.publishers`` threads owns every P-th slot and sends, in one publish, all its messages
    that are due. The first ``TRIM`` of the schedule is warm-up. Returns once every message of this
    point completed, so the next point starts on idle workers. A stack and a raw client pair run the
    same code: only ``run.send`` differs.
    """
    before = count(run.timings_dir) // run.copies  # messages of the earlier points (all complete)
    schedule = plan(rate, seconds, seed, max_messages, encoded=run.encoded)
    n = len(schedule.planned)
    send_s, sent_late = play(run, schedule)
    start = schedule.start
    rows = first_completions([r for r in run.wait(before + n) if r[1] is not None and r[1] >= start - 1e-3])
    # ^ this point's: sent from its schedule's start (the points before it completed before it began)
    warm = schedule.planned[int(TRIM * n)]
    latencies = [r[3] - r[1] for r in rows if r[1] >= warm]
    achieved = n / send_s
    return {"offered": round(rate, 1), "achieved_send": round(achieved, 1),
            "producer_bound": achieved < 0.95 * rate,  # the producer fell behind: latency includes its delay
            "producer_late_max_ms": round(max(sent_late) * 1000, 1), **percentiles(latencies),
            "hops": hop_medians(run, schedule, rows)}
