"""Cluster scenarios, Jepsen-style: a keyed stream through a real fault, and what became of each record.

A *probe* (probes.py: Kafka at acks=1/all and min.insync 1/2, RabbitMQ quorum
or classic, confirms on or off; any stack that declares ``clustered`` can
offer the same small surface) publishes a steady stream of ``(key, seq)``
records and consumes them with acknowledgements after recording. While it
runs, the leader of its queue / partition is killed, paused or cut off, then
healed. After a final drain every record is classified:

    confirmed-but-lost   the broker confirmed it, no consumer saw it and a final read does not find it
                         (must be 0 where promised)
    stranded             confirmed, not consumed, but still in the broker (the consumer stalled)
    duplicates           effects beyond the first of the same record
    unexpected           consumed, yet never confirmed (failed or indeterminate publish that landed)
    order violations     per key, a record consumed after a later one of the same key
    unavailability       longest gap between confirmed publishes / between consumed effects (s)
    vanished             confirmed, yet absent from the final read, consumed or not: only for a probe whose
                         final read returns consumed records too (``keeps_consumed``: a Redis stream), where a
                         record read from a primary that a failover then discarded is still the broker's loss
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from typing import Protocol

from queuekit.brokers.faults import FaultRecord, Faults, fresh_cluster, split_nodes, wait_whole
from queuekit.core.config import Settings
from queuekit.core.waiting import WaitTimeout, wait_for

KEYS = 8  # keyed stream: 8 keys, seq increasing per key
BIN = 0.5  # seconds per timeline bin


class Recorder:
    """What the probe's producer and consumer saw, with wall-clock times (thread-safe appends)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[tuple[str, int], float] = {}
        self.confirmed: dict[tuple[str, int], float] = {}
        self.failed: dict[tuple[str, int], str] = {}
        self.effects: list[tuple[str, int, float]] = []
        self.notes: Counter = Counter()  # reconnects, errors by kind

    def on_sent(self, key: str, seq: int) -> None:
        with self.lock:
            self.sent[(key, seq)] = time.time()

    def on_confirmed(self, key: str, seq: int) -> None:
        with self.lock:
            self.confirmed[(key, seq)] = time.time()

    def on_failed(self, key: str, seq: int, why: str) -> None:
        with self.lock:
            self.failed[(key, seq)] = why[:80]

    def on_effect(self, key: str, seq: int, at: float | None = None) -> None:
        """``at``: when the effect was applied, if not now (a stack's worker wrote it in the ledger)."""
        with self.lock:
            self.effects.append((key, seq, time.time() if at is None else at))

    def note(self, what: str) -> None:
        with self.lock:
            self.notes[what[:60]] += 1


class Probe(Protocol):
    """What a cluster scenario needs from a stack (or a raw client): a keyed stream in, effects out."""

    broker: str  # which cluster it runs on: rabbitmq | kafka
    variant: str  # e.g. "acks=all min.insync=2", "quorum confirms"

    def setup(self) -> None:
        """Declare a fresh queue / topic (3 replicas) and wait until every replica is in sync."""

    def leader(self) -> int:
        """The node index leading the queue / partition, from the broker's own metadata."""

    def start(self, rec: Recorder, stop: threading.Event) -> list[threading.Thread]:
        """Start the consumer (until ``close``) and the producer (until ``stop``); return the producer threads."""

    def final_read(self) -> set[tuple[str, int]]:
        """After the drain: every record the broker still holds, read by a fresh reader."""

    def close(self) -> None:
        """Stop consuming, close clients, delete what setup declared."""


class SetupFailed(Exception):
    """The probe could not start, before any fault was injected: nothing of the cell has run yet."""


@dataclass
class Plan:
    """How a cell runs; defaults sized for CI (one cell ~30-60 s)."""

    rate: float = 100.0  # records per second offered by the producer
    warmup: float = 3.0  # seconds of steady traffic before the fault (after the first confirmed publish)
    first_confirm: float = 60.0  # at most this long for that first confirm (else the probe did not start)
    hold: float = 12.0  # seconds the fault lasts (pause/partition: beyond heartbeat and session timeouts)
    recover: float = 5.0  # seconds of traffic after healing
    drain: float = 45.0  # at most this long for the consumer to catch up on every confirmed record
    quiet: float = 8.0  # ...and stop earlier once nothing new arrived for this long


@dataclass
class FaultOutcome:
    broker: str
    variant: str
    fault: str
    leader: int  # node hurt (1-based in the report)
    published: int
    confirmed: int
    failed: int
    consumed: int  # distinct records consumed
    lost: int  # confirmed, never consumed, and not in the final read
    stranded: int  # confirmed, never consumed, yet still in the broker
    duplicates: int
    unexpected: int
    order_violations: int
    publish_gap_s: float  # longest gap between confirmations, seconds
    consume_gap_s: float  # longest gap between consumed effects, seconds
    heal_s: float | None
    seconds: float
    vanished: int | None = None  # confirmed, absent from the final read (probes whose final read keeps consumed)
    notes: dict = field(default_factory=dict)
    timeline: dict = field(default_factory=dict)  # t (s from fault), confirmed/s, consumed/s, fault window

    def as_dict(self) -> dict:
        return asdict(self)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """Longest stretch inside [start, end] with no event (edges count: a stream that never resumed)."""
    points = [start, *sorted(t for t in times if start <= t <= end), end]
    return round(max(b - a for a, b in zip(points, points[1:])), 2)


def analyse(rec: Recorder, fault: FaultRecord, broker: str, variant: str, started: float,
            stopped: float, seconds: float, final: AbstractSet[tuple[str, int]] = frozenset(),
            keeps_consumed: bool = False) -> FaultOutcome:
    first: dict[tuple[str, int], float] = {}
    copies: Counter[tuple[str, int]] = Counter()
    violations = 0
    highest: dict[str, int] = defaultdict(lambda: -1)
    for key, seq, t in sorted(rec.effects, key=lambda e: e[2]):
        copies[(key, seq)] += 1
        if (key, seq) in first:
            continue  # a redelivery: counted as a duplicate, not as an order violation
        first[(key, seq)] = t
        if seq < highest[key]:
            violations += 1  # consumed after a later record of the same key
        highest[key] = max(highest[key], seq)
    confirmed = set(rec.confirmed)
    window_end = fault.healed_at or stopped
    return FaultOutcome(
        broker=broker, variant=variant, fault=fault.kind, leader=fault.node + 1,
        published=len(rec.sent), confirmed=len(confirmed), failed=len(rec.failed), consumed=len(first),
        lost=len(confirmed - set(first) - final),
        stranded=len((confirmed - set(first)) & final),
        duplicates=sum(n - 1 for n in copies.values()),
        unexpected=len(set(first) - confirmed),
        order_violations=violations,
        # Measured from the fault to the end of the recovery period: the gap the fault caused.
        publish_gap_s=longest_gap(list(rec.confirmed.values()), fault.injected_at, max(window_end, stopped)),
        consume_gap_s=longest_gap(list(first.values()), fault.injected_at, max(window_end, stopped)),
        heal_s=fault.heal_seconds, seconds=round(seconds, 1), notes=dict(rec.notes),
        vanished=len(confirmed - final) if keeps_consumed else None,
        timeline=timeline(rec, fault, started, stopped),
    )


def timeline(rec: Recorder, fault: FaultRecord, started: float, stopped: float) -> dict:
    zero = fault.injected_at
    bins = int((stopped - started) / BIN) + 1
    offset = int((zero - started) / BIN)

    def rate(times) -> list[float]:
        counts = [0] * bins
        for t in times:
            i = int((t - started) / BIN)
            if 0 <= i < bins:
                counts[i] += 1
        return [c / BIN for c in counts]

    return {"t": [round((i - offset) * BIN, 2) for i in range(bins)],
            "confirmed_per_s": rate(rec.confirmed.values()),
            "consumed_per_s": rate(t for _, _, t in rec.effects),
            "fault_from": 0.0, "fault_to": round((fault.healed_at or stopped) - zero, 2)}


def run_cell(settings: Settings, probe: Probe, kind: str, plan: Plan = Plan(),
             say: Callable[[str], None] = lambda _: None) -> FaultOutcome:
    """One probe through one fault of its leader: steady traffic, fault, heal, recover, drain, classify."""
    rec, stop = Recorder(), threading.Event()
    t0 = time.monotonic()
    repaired = wait_whole(settings, probe.broker)  # the previous cell may have left the cluster split
    try:
        probe.setup()  # stops whatever it started if it fails
    except Exception as exc:
        raise SetupFailed(f"{type(exc).__name__}: {exc}") from exc
    faults = Faults(settings)
    started = time.time()
    threads = probe.start(rec, stop)
    try:
        _warm_up(rec, plan)
        leader = probe.leader()
        say(f"{probe.broker} {probe.variant}: {kind} of node {leader + 1}")
        with faults.during(kind, probe.broker, leader) as fault:
            _steady(rec, plan.hold)
        _steady(rec, plan.recover)
        stop.set()  # the producer stops; the consumer drains
        for t in threads:
            t.join(timeout=60)
        _drain(rec, plan)
        stopped = time.time()
        if apart := split_nodes(settings, probe.broker):  # the fault's aftermath, beyond the heal: say so,
            rec.note(f"cluster still split after the heal: nodes {[i + 1 for i in apart]} apart")
            wait_whole(settings, probe.broker, timeout=15)  # and make it whole: the final read asks the broker
        final = probe.final_read()
        if repaired:
            rec.note(f"started after restarting node(s) {[i + 1 for i in repaired]} (left split before)")
    finally:
        stop.set()
        probe.close()
    return analyse(rec, fault, probe.broker, probe.variant, started, stopped, time.monotonic() - t0, final,
                   keeps_consumed=getattr(probe, "keeps_consumed", False))


def _warm_up(rec: Recorder, plan: Plan) -> None:
    """Traffic flows before the fault: the first confirmed publish, then ``plan.warmup`` s of steady traffic.

    A probe none of whose publishes is confirmed yet cannot show what the fault does to confirmed records:
    Celery on Kafka's first publish (kombu makes an idempotent producer, then ``flush()``) once took longer
    than the 3 s warm-up, the pause hit it in flight, and the row said 0 confirmed, 0 lost. That is a probe
    that did not start (``SetupFailed``: the case gets its one fresh-cluster retry), not a result."""
    try:
        wait_for(lambda: rec.confirmed, timeout=plan.first_confirm, what="the probe's first confirmed publish",
                 describe=lambda: f"{len(rec.sent)} sent, {len(rec.failed)} failed, none confirmed")
    except WaitTimeout as exc:
        raise SetupFailed(str(exc)) from exc
    _steady(rec, plan.warmup)


def _steady(rec: Recorder, seconds: float) -> None:
    """Let traffic flow for ``seconds``: this is the experiment's duration, not a readiness wait."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


def _drain(rec: Recorder, plan: Plan) -> None:
    """Until every confirmed record was consumed, or nothing new arrived for ``plan.quiet`` s, or ``plan.drain``."""
    deadline = time.monotonic() + plan.drain
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        with rec.lock:
            seen = {(k, s) for k, s, _ in rec.effects}
            count = len(rec.effects)
            missing = len(set(rec.confirmed) - seen)
        if missing == 0:
            return
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > plan.quiet:
            return  # nothing arrives any more: what is missing is lost
        time.sleep(0.2)


def run_case(settings: Settings, case, plan: Plan = Plan(), say: Callable[[str], None] = lambda _: None,
             fresh: Callable[..., None] | None = None) -> FaultOutcome:
    """One case; if its probe cannot even start, once more on a freshly formed cluster, and the row says so.

    Seen in full ``compare --topology cluster`` runs: after ~44 RabbitMQ fault cells the stream stack's
    worker connected but never subscribed, while a fresh cluster ran the same cell. A cell that fails
    *after* its fault started is a result and is never retried."""
    try:
        return run_cell(settings, case.probe(settings), case.fault, plan, say)
    except SetupFailed as exc:
        say(f"{case.id}: could not start ({exc}); forming a fresh {case.broker} cluster and trying once more"[:300])
        (fresh or fresh_cluster)(settings, case.broker, say)
        out = run_cell(settings, case.probe(settings), case.fault, plan, say)
        out.notes["ran on a fresh cluster: setup failed on the aged one"] = 1
        return out


def run_cases(settings: Settings, cases, plan: Plan = Plan(),
              say: Callable[[str], None] = lambda _: None) -> list[tuple[dict, FaultOutcome | None, str | None]]:
    """Every case in turn (scenarios/cluster_faults.py); a case that cannot run is reported with why."""
    results: list[tuple[dict, FaultOutcome | None, str | None]] = []
    for case in cases:
        info = {"id": case.id, "broker": case.broker, "variant": case.variant, "fault": case.fault,
                "promise": case.promise, "why": case.why, "stack": dict(case.options).get("stack", "")}
        if getattr(case, "unsupported", ""):  # shown with its reason, never silently left out
            results.append(({**info, "unsupported": case.unsupported}, None, None))
            say(f"{case.id}: not run: {case.unsupported}")
            continue
        try:
            out = run_case(settings, case, plan, say)
            results.append((info, out, None))
            say(f"{case.id}: {_summary(out)}")
        except Exception as exc:  # noqa: BLE001 - one broken case must not hide the others
            results.append((info, None, f"{type(exc).__name__}: {exc}"))
            say(f"{case.id}: could not run: {exc}"[:200])
    return results


def _summary(out: FaultOutcome) -> str:
    return (f"confirmed {out.confirmed}, lost {out.lost}, duplicates {out.duplicates}, unexpected {out.unexpected}, "
            f"order violations {out.order_violations}, gaps {out.publish_gap_s}s / {out.consume_gap_s}s")
