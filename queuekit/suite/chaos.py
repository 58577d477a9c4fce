"""``queuekit chaos``: kill workers and restart brokers in a loop under load, then count like Jepsen.

While a producer publishes a steady stream, every ``every`` seconds the loop either SIGKILLs a
random live worker and starts a replacement in the background (``kill``; skipped while the
previous replacement still boots, so a run never ends up with no consumer), or stops and starts the stack's broker
(``restart``, kit-managed brokers only), or alternates (``both``). Afterwards it waits until the
broker shows nothing left, and counts from the ledger and the dead-letter place:

    confirmed      publishes the broker confirmed         indeterminate  publishes that raised
    lost           confirmed, with neither an effect nor a dead letter (per service)
    duplicates     extra effects of one key (the guard is on: should be 0)
    unexpected     effects of keys never published
    recovered      indeterminate publishes that took effect after all
    attempts       handler attempts recorded (>= effects: the redeliveries the faults caused)

Messages take ``SLOW_S`` each, so a kill lands mid-task.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

from queuekit.core.config import Settings, private_dir
from queuekit.core.envelope import MalformedMessage, decode, make_envelope
from queuekit.core.errors import KitError
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.stacks.registry import load_stack
from workloads import WORKLOADS

MODES = ("kill", "restart", "both")
SLOW_S = 0.02  # each message's handler time: kills catch workers mid-task
BATCH = 10  # envelopes per publish call
SETTLE_TIMEOUT = 180.0
MAX_ERRORS = 10


@dataclass
class Tally:
    stack: str
    mode: str
    seconds: float
    kills: int = 0
    restarts: int = 0
    confirmed: int = 0
    refused: int = 0
    indeterminate: int = 0
    effects: int = 0
    lost: int = 0
    duplicates: int = 0
    unexpected: int = 0
    recovered: int = 0
    dead_letters: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def error(self, text: str) -> None:
        """Keep the first MAX_ERRORS (a broker restart fails every publish meanwhile), count the rest."""
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)


def run_chaos(settings: Settings, stack_name: str, *, mode: str = "kill", seconds: float = 30.0, every: float = 1.5,
              workload: str = "signup", workers: int = 2, rate: float = 100.0,
              show: Callable[[Tally], None] = lambda _: None) -> Tally:
    """Run the loop for ``seconds`` and return the final count; ``show`` gets the live tally."""
    if mode not in MODES:
        raise KitError(f"unknown chaos mode {mode!r}", f"choose from {', '.join(MODES)}")
    if mode != "kill" and (settings.mode != "local" or settings.external_amqp_url or settings.external_kafka_bootstrap):
        raise KitError("broker restarts need brokers the kit manages", "use --mode kill with external brokers")
    spec = WORKLOADS[workload]
    runs = private_dir(settings.home / "runs")  # ledgers: owner only
    ledger = Ledger(runs / f"chaos-{stack_name}-{workload}-{int(time.time())}.db")
    stack = load_stack(stack_name)(settings, ledger.path)
    tally = Tally(stack_name, mode, seconds)
    confirmed: set[str] = set()
    unsure: set[str] = set()
    stack.reset()
    stack.start([workload], StackOptions(workers=workers, max_retries=5, backoff_ms=50))
    stop, lock = threading.Event(), threading.Lock()

    def publish_loop() -> None:
        """The load: a batch every BATCH / rate seconds, each counted confirmed / refused / indeterminate."""
        seed, batch_no = int(time.time()), 0
        while not stop.wait(BATCH / rate):  # the load's pace, not a wait for readiness
            batch_no += 1
            envs = [_unique(make_envelope(m, {"fault": "slow", "seconds": SLOW_S}), batch_no)
                    for m in spec.make_messages(BATCH, seed=seed + batch_no)]
            try:
                report = stack.publish(workload, envs)
            except Exception as exc:  # noqa: BLE001 - the broker went away mid-publish: indeterminate
                with lock:
                    unsure.update(e.key for e in envs)
                    tally.indeterminate += len(envs)
                    tally.error(f"publish: {type(exc).__name__}: {str(exc)[:100]}")
                continue
            with lock:
                if report.refused:  # the report does not say which ones: all of the batch are unsure
                    unsure.update(e.key for e in envs)
                    tally.refused += report.refused
                else:
                    confirmed.update(e.key for e in envs)
                tally.confirmed += report.confirmed

    publisher = threading.Thread(target=publish_loop, name="chaos-publisher", daemon=True)
    replacing = Replacements()
    try:
        rng = random.Random(7)
        t0 = time.monotonic()
        publisher.start()
        while time.monotonic() - t0 < seconds:
            fault_at = time.monotonic() + every
            while time.monotonic() < fault_at:
                _refresh(tally, ledger, spec.services)
                show(tally)
                time.sleep(min(0.25, max(0.0, fault_at - time.monotonic())))  # the tally's refresh rate
            _fault(stack, settings, mode, tally, rng, replacing)
        stop.set()
        publisher.join(60)
        replacing.wait_started(90)
        while len(stack.worker_pids()) < workers:  # back to full strength, so the backlog drains
            stack.add_worker()
        stack.drain(workload, timeout=SETTLE_TIMEOUT)  # every retry, redelivery and dead letter settled
        dead = stack.dead_letters(workload)
        dead_keys = {k for d in dead if (k := _key(d.payload))}
        tally.dead_letters = len(dead)
        tally.lost = tally.duplicates = tally.unexpected = tally.recovered = 0
        for service in spec.services:
            counts: dict[str, int] = {}
            for e in ledger.effects(service=service):
                counts[e.key] = counts.get(e.key, 0) + 1
            tally.lost += len(confirmed - set(counts) - dead_keys)
            tally.duplicates += sum(n - 1 for n in counts.values())
            tally.unexpected += len(set(counts) - confirmed - unsure)
            tally.recovered += len(unsure & set(counts))
        _refresh(tally, ledger, spec.services)
        show(tally)
        return tally
    finally:
        stop.set()
        stack.stop()
        replacing.release()


def _unique(env, batch_no: int):
    """Keys unique across the run (``make_messages`` repeats keys between seeds for some workloads)."""
    body, names = env.body, {f.name for f in fields(env.body)}
    if "idempotency_key" in names:
        body = replace(body, idempotency_key=f"chaos-{batch_no}-{body.idempotency_key}")
    elif "seq" in names:
        body = replace(body, seq=batch_no * 1000 + body.seq)
    elif "video_id" in names:
        body = replace(body, video_id=batch_no * 1000 + body.video_id)
    return make_envelope(body, env.headers)


def _fault(stack, settings: Settings, mode: str, tally: Tally, rng: random.Random, replacing: Replacements) -> None:
    restart = mode == "restart" or (mode == "both" and (tally.kills + tally.restarts) % 2 == 1)
    try:
        if restart:
            stack.restart_broker()  # SIGTERM, then start again: a rolling restart of the one node
            tally.restarts += 1
            return
        if replacing.starting.is_set():  # the last victim's replacement still boots: killing now could
            return  # leave no consumer at all (and the readiness wait would count a dead worker)
        live = stack.worker_pids()
        victims = [i for i, p in enumerate(stack.pool.procs) if p.pid in live]
        if victims:
            stack.kill_worker(rng.choice(victims))  # SIGKILL: no ack, no commit, no goodbye
            tally.kills += 1
        replacing.start_one(stack, tally)
    except Exception as exc:  # noqa: BLE001 - recorded; the loop goes on
        tally.error(f"fault: {type(exc).__name__}: {str(exc)[:160]}")


class Replacements:
    """Replacement workers started in the background, so kills keep their rhythm while one boots.

    Each starter thread stays alive until the run ends: the pool ties a worker to the thread that
    spawned it (PR_SET_PDEATHSIG fires when that *thread* exits), so a starter that returned would
    take its worker down with it.
    """

    def __init__(self):
        self.done = threading.Event()
        self.threads: list[threading.Thread] = []
        self.starting = threading.Event()

    def start_one(self, stack, tally: Tally) -> None:
        if self.starting.is_set():  # one at a time: two would race for the same worker index
            return
        self.starting.set()
        thread = threading.Thread(target=self._run, args=(stack, tally), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _run(self, stack, tally: Tally) -> None:
        try:
            stack.add_worker()
        except Exception as exc:  # noqa: BLE001 - e.g. killed while it started: the next fault replaces it
            tally.error(f"replacement: {type(exc).__name__}: {str(exc)[:160]}")
        finally:
            self.starting.clear()
        self.done.wait()

    def wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.starting.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)  # a worker booting; add_worker itself polls its readiness

    def release(self) -> None:
        self.done.set()


def _refresh(tally: Tally, ledger: Ledger, services: tuple[str, ...]) -> None:
    tally.effects = sum(ledger.effect_counts().get(s, 0) for s in services)
    tally.attempts = ledger.count("attempts")


def _key(payload: bytes) -> str | None:
    try:
        return decode(payload).key
    except MalformedMessage:
        return None
