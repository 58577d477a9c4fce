"""Any registered Stack as a cluster-fault probe: its own workers, publish path and ledger.

The raw probes (probes.py) show what the *broker* promises; this adapter shows
what a *framework* on it delivers through the same fault, using nothing but
the Stack template:

    setup        ``reset`` + ``start`` the stack's workers on the cluster settings
                 (the ``tracking`` workload, one Kafka partition, the idempotency guard OFF
                 so every delivery that reaches the handler leaves an effect: duplicates count)
    leader       the leader of ``fault_target(SERVICE)``: a quorum queue's leader, a classic
                 queue's node, a topic's partition 0 leader, the Redis primary the Sentinels name,
                 from the broker's own metadata
    start        a producer thread publishing one ``TrackEvent`` (user = key, seq per user) per
                 ``stack.publish`` call: returned and confirmed = confirmed; refused or raised =
                 failed (the stack's own confirms / acks=all / retries decide); and a thread
                 reading new effects of SERVICE from the ledger, with the time each was applied
    final_read   only when confirmed records are missing: fresh workers (``start`` again) and
                 ``drain``; what they apply now was still in the broker (stranded), the rest is lost
    close        ``stop`` and ``purge``
"""
from __future__ import annotations

import threading
import time
import uuid

from queuekit.brokers.faults import kafka_isr, kafka_partition_leader, rabbit_queue_leader, redis_primary
from queuekit.core.config import Settings
from queuekit.core.envelope import make_envelope
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.waiting import WaitTimeout, wait_for
from queuekit.stacks.declaration import ClusterPromise
from queuekit.stacks.registry import load_stack, stack_names
from workloads.messages import TrackEvent

from .faults import Recorder
from .probes import _paced

WORKLOAD = "tracking"  # keyed: user_id is the key, seq counts per user (order is checkable)
SERVICE = "tracking.recommendations"  # the subscriber whose effects are counted and whose queue / topic is hurt
POLL_S = 0.25  # how often the ledger is read for new effects
FINAL_READ_STEP_S = 60.0  # the final read's drain is retried while each step of this long brings new effects,
FINAL_READ_S = 300.0  # up to this long in all


def _key(user_id: int) -> str:
    return f"k{user_id - 1}"


class StackProbe:
    def __init__(self, settings: Settings, stack: str, rate: float = 50.0, workers: int = 2):
        cls = load_stack(stack)
        self.settings, self.rate, self.variant = settings, rate, f"stack={stack}"  # as the case names it
        self.broker = cls.capabilities.broker
        self.stack = cls(settings, settings.home / "faults" / f"{stack}-{uuid.uuid4().hex[:8]}" / "ledger.db")
        self.options = StackOptions(
            # a stream's readers each read everything (no competing consumers): one, or every record is doubled
            workers=workers if cls.capabilities.competing_consumers else 1,
            guard=False,  # every delivery the handler completes is an effect: a redelivery shows as a duplicate
            partitions=1,  # Kafka: one partition, one leader to hurt (RabbitMQ: ignored)
            max_retries=0,  # a handler never fails here; a retry would only blur what the broker did
        )
        self.done = threading.Event()
        self.reader: threading.Thread | None = None
        self.rec: Recorder | None = None
        self.seen = 0  # the last effects.id read

    @property
    def target(self) -> str:
        return self.stack.fault_target(SERVICE)

    def setup(self) -> None:
        target = self.target  # a stack without one fails here, before anything starts
        try:
            self.stack.reset()
            self.stack.start([WORKLOAD], self.options)
            if self.broker == "kafka":
                wait_for(lambda: len(kafka_isr(self.settings, target)) == 3, timeout=60,
                         what=f"{target} with 3 in-sync replicas (the stack's topic on the cluster)")
        except BaseException:
            self.stack.stop()  # run_cell closes only what started: no worker outlives a failed setup
            raise

    def leader(self) -> int:
        if self.broker == "kafka":
            return kafka_partition_leader(self.settings, self.target)
        if self.broker == "redis":  # one primary holds every key: the Sentinels' current one
            return redis_primary(self.settings)
        return rabbit_queue_leader(self.settings, self.target)

    def start(self, rec: Recorder, stop: threading.Event) -> list[threading.Thread]:
        self.rec = rec

        def produce() -> None:
            for key, seq in _paced(self.rate, stop):
                user = int(key[1:]) + 1
                env = make_envelope(TrackEvent(user_id=user, seq=seq, kind="view", ts=time.time()))
                rec.on_sent(key, seq)
                try:
                    report = self.stack.publish(WORKLOAD, [env])  # returns once the broker confirmed or refused
                except Exception as exc:  # noqa: BLE001 - any raise is a failed (indeterminate) publish
                    rec.on_failed(key, seq, f"{type(exc).__name__}: {exc}")
                    rec.note(f"publish raised {type(exc).__name__}")
                    continue
                if report.confirmed:
                    rec.on_confirmed(key, seq)
                else:
                    rec.on_failed(key, seq, "refused")
                    rec.note("publish refused")

        self.reader = threading.Thread(target=self._read_effects, name="stack-probe-effects", daemon=True)
        self.reader.start()
        producer = threading.Thread(target=produce, name="stack-probe-producer", daemon=True)
        producer.start()
        return [producer]

    def _read_effects(self) -> None:
        ledger = Ledger(self.stack.ledger_path)
        while True:
            stopping = self.done.wait(POLL_S)
            for effect in ledger.effects(WORKLOAD, SERVICE):
                if effect.id > self.seen and self.rec is not None:
                    self.rec.on_effect(_key(effect.user_id or 0), effect.seq or 0, effect.finished_at)
                    self.seen = effect.id
            if stopping:
                return

    def _stop_reading(self) -> None:
        self.done.set()
        if self.reader is not None:
            self.reader.join(timeout=30)

    def final_read(self) -> set[tuple[str, int]]:
        """Fresh workers read what the broker still holds; only run when confirmed records are missing."""
        self._stop_reading()
        rec = self.rec
        if rec is None:
            return set()
        with rec.lock:
            missing = set(rec.confirmed) - {(k, s) for k, s, _ in rec.effects}
        if not missing:
            return set()
        mark, ledger = self.seen, Ledger(self.stack.ledger_path)

        def read() -> set[tuple[str, int]]:  # what the fresh workers applied
            return {(_key(e.user_id or 0), e.seq or 0) for e in ledger.effects(WORKLOAD, SERVICE) if e.id > mark}

        self.stack.start([WORKLOAD], self.options)  # stops the old workers first (what they held goes back)
        deadline = time.monotonic() + FINAL_READ_S
        while True:
            before = len(read())
            try:
                self.stack.drain(WORKLOAD, timeout=FINAL_READ_STEP_S)
                break
            except WaitTimeout as exc:
                # Still reading: a slow consumer (Celery on Kafka) is not a loss. Keep going while each step
                # brings new effects; stop when one brings none or at the deadline, and say so in the row.
                if len(read()) == before or time.monotonic() > deadline:
                    rec.note(f"final read drain: {exc}"[:60])
                    break
        return read()

    def close(self) -> None:
        self._stop_reading()
        for step in (self.stack.stop, self.stack.purge):  # stop: the workers first, then the driver's clients
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - cleanup after a fault must not hide the measurement
                if self.rec is not None:
                    self.rec.note(f"{step.__name__} failed: {type(exc).__name__}: {exc}"[:60])


def cluster_stacks() -> list[tuple[str, str, ClusterPromise]]:
    """(stack, broker, promise) of every registered stack that declares ``cluster`` (scenarios/cluster_faults.py)."""
    return [(name, cls.capabilities.broker, cls.cluster) for name in stack_names()
            if (cls := load_stack(name)).cluster is not None]
