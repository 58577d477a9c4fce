"""StubStack: the Stack protocol in memory — no broker, the workers are threads (Dramatiq's StubBroker idea).

For broker-free tests of the suite (runner, compare, guide), the report and
the CLI's compare path. It is never a column of the real comparison: it is
not in ``registry.STACKS``; a test registers it for a while
(``monkeypatch.setitem(registry.STACKS, "stub", StubStack)``) or hands the
class to ``run_cell``. ``StubStack.variant("stub-log", replayable=True)``
makes one that declares other capabilities; ``behaves={...}`` makes one whose
behaviour differs from its declaration (the suite must then report a mismatch).

Every delivery goes through ``queuekit.core.execute.process`` and the real
ledger, exactly as in a worker process. What the stub does, per capability:

* Supports fan-out: by the broker when ``native_fanout`` (one message per event), else the producer copies.
* Order per key: with ``per_key_order`` a key is handed out only while no delivery of it is held.
* Replay: with ``replayable`` a new reader gets every entry message ever published; otherwise only
  what is still unconsumed.
* Retries: ``max_retries`` retries ``backoff_ms * 2**n`` apart, then the dead-letter list, with the reason.
* Acks after the handler; on receipt with ``early_ack`` if ``ack_on_receipt_possible`` (ignored otherwise).
* ``queue_max_length`` refuses the publisher when the entry queue is full, unless ``pull_based``.
* ``kill_worker``: a thread cannot be SIGKILLed, so its ledger refuses every write from then on (an
  attempt in hand stays unfinished) and what it held goes back to the queue (late ack) or is gone.
* ``{"fault": "crash"}`` is acted out by the stub: ``process`` would ``os._exit`` the test process.
* ``join(workload)`` (= ``drain``) blocks on a condition until nothing is ready, delayed or held.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import msgspec

from queuekit.core.envelope import Envelope, MalformedMessage, decode, encode
from queuekit.core.errors import WaitTimeout
from queuekit.core.execute import PermanentError, forward, handler_for, next_service, process
from queuekit.core.worker_env import FAULTS_ENV, faults_enabled
from workloads import WORKLOADS

from .base import DeadLetter, PublishReport, Stack
from .capabilities import Capabilities
from .pool import WorkerPool
from .reset import Purged
from .threads import ThreadWorker, ThreadWorkers, WorkerKilled

STUB_CAPABILITIES = Capabilities(
    broker="memory", native_fanout=True, per_key_order=False, replayable=False, dead_letter="adapter",
    ack_on_receipt_possible=True, transactions=False, pull_based=False, evicts_slow_consumer=False,
)


class StubWire:
    """The stub's raw publisher: a hostile input's payload as it is, through ``publish_raw`` (no framing)."""

    def __init__(self, stack: Stack):
        self.stack = stack

    def send(self, item: Any, workload: str = "signup") -> None:
        self.stack.publish_raw(workload, item.payload)


@dataclass(eq=False)
class Delivery:
    service: str
    payload: bytes
    key: str | None  # the partition key (per-key order), None for raw bytes
    retries: int = 0
    not_before: float = 0.0  # a retry's backoff
    holder: str | None = None  # the worker handling it
    acked: bool = False  # acked on receipt (early ack): a crash loses it; join() still waits for its handler


class StubStack(Stack):
    name = "stub"
    worker_module = "queuekit.stacks.stub"  # never run as a process: ThreadWorkers run ``consume``
    capabilities = STUB_CAPABILITIES
    raw_publisher = "queuekit.stacks.stub:StubWire"  # the hostile input's bytes straight into publish_raw
    observer = None  # no live view: nothing runs outside the test process
    libraries = ()  # no framework: the Stack protocol in memory
    cluster = None  # no broker nodes to hurt
    behaves: Capabilities | None = None  # what it does, when that differs from what it declares

    @classmethod
    def variant(cls, name: str, behaves: dict[str, Any] | None = None, **declared: Any) -> type[StubStack]:
        """A stub class declaring other capabilities (``replayable=True``) and, if given, behaving otherwise."""
        caps = replace(cls.capabilities, **declared)
        return type(f"StubStack[{name}]", (cls,), {"name": name, "capabilities": caps,
                                                   "behaves": replace(caps, **behaves) if behaves else None})

    def __init__(self, settings, ledger_path, capabilities: Capabilities | None = None):
        super().__init__(settings, ledger_path)
        if capabilities is not None:  # one instance with its own declaration
            self.capabilities = capabilities  # type: ignore[misc]
        self.cond = threading.Condition()
        self.messages: list[Delivery] = []  # ready, delayed and held, in publish order
        self.dead: dict[str, list[DeadLetter]] = {}
        self.log: dict[str, int] = {}  # entry messages ever published per workload (what a log would keep)

    @property
    def acts(self) -> Capabilities:
        return self.behaves or self.capabilities

    # -- the template's hooks ------------------------------------------------------------------------
    def make_pool(self) -> WorkerPool:
        # The workers are threads of this process: the harness's fault switch goes in its environment.
        os.environ[FAULTS_ENV] = "1" if self.harness_faults else "0"
        return ThreadWorkers(self.name, self.ledger_path.parent / "logs", stack=self)

    def _threads(self) -> ThreadWorkers:
        return cast(ThreadWorkers, self._running())

    def declare(self) -> None:
        return None  # queues exist as soon as something is put in them

    def consumers_ready(self) -> bool:
        return all(t.is_alive() or w.returncode is not None for w in self._threads().workers for t in w.threads)

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The messages, dead letters and replay log of ``workloads``; another workload's stay."""
        purged = Purged()
        services = {s for w in workloads for s in WORKLOADS[w].services}
        with self.cond:
            purged.deleted("queue", sorted({d.service for d in self.messages if d.service in services}))
            self.messages[:] = [d for d in self.messages if d.service not in services]
            purged.dead({w: len(self.dead.pop(w, [])) for w in workloads})
            for w in workloads:
                self.log.pop(w, None)
            self.cond.notify_all()
        return purged

    def restart_broker(self) -> None:
        """Nothing to restart: the in-memory broker keeps every message, as durable queues would."""

    # -- producing ---------------------------------------------------------------------------------------
    def _entry(self, workload: str) -> tuple[str, ...]:
        spec = WORKLOADS[workload]
        return spec.services if spec.shape == "fan-out" else spec.services[:1]

    def _put(self, workload: str, payload: bytes, key: str | None) -> int:
        """Queue one message on each entry service; 0 if a bounded queue refused it, else messages sent."""
        services = self._entry(workload)
        limit = self.options.queue_max_length
        with self.cond:
            ready = lambda s: sum(1 for d in self.messages if d.service == s and d.holder is None)
            if limit is not None and not self.acts.pull_based and any(ready(s) >= limit for s in services):
                return 0  # reject-publish: the publisher hears about it
            self.messages += [Delivery(s, payload, key) for s in services]
            self.log[workload] = self.log.get(workload, 0) + 1
            self.cond.notify_all()
        return 1 if self.acts.native_fanout else len(services)

    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        t0, sent = time.monotonic(), [self._put(workload, encode(e), e.body.partition_key) for e in envelopes]
        return PublishReport(confirmed=sum(1 for n in sent if n), refused=sent.count(0),
                             seconds=time.monotonic() - t0, broker_messages=sum(sent))

    def publish_raw(self, workload: str, payload: bytes) -> None:
        if not self._put(workload, payload, None):
            raise RuntimeError(f"the stub's {workload} queue is full")

    # -- the workers -------------------------------------------------------------------------------------
    def consume(self, worker: ThreadWorker) -> None:
        """One worker thread: take the next deliverable message, handle it, settle it; until stopped or killed."""
        services = {s for w in self.workloads for s in WORKLOADS[w].services}
        while True:
            with self.cond:
                delivery = None
                while delivery is None:
                    if worker.stopping or worker.killed.is_set():
                        return
                    delivery, wake = self._next(services)
                    if delivery is None:
                        self.cond.wait(wake)  # until a publish / settle, or the next retry is due
                delivery.holder = worker.name
                # the ack on receipt (at-most-once) when asked for and the stack has such a mode; else after the handler
                delivery.acked = self.options.early_ack and self.acts.ack_on_receipt_possible
            try:
                self._handle(worker, delivery)
            except WorkerKilled:
                return  # crash() already settled what this worker held

    def _next(self, services: set[str]) -> tuple[Delivery | None, float]:
        now, due = time.time(), [0.5]
        held = {d.key for d in self.messages if d.holder is not None}
        for d in self.messages:
            if d.service not in services or d.holder is not None:
                continue
            if d.not_before > now:
                due.append(d.not_before - now)
            elif not (self.acts.per_key_order and d.key is not None and d.key in held):
                return d, 0.0
        return None, min(due)

    def _handle(self, worker: ThreadWorker, delivery: Delivery) -> None:
        service, follow_up = delivery.service, []
        try:
            env = decode(delivery.payload)
            crash_at = env.headers.get("at") if faults_enabled() and env.headers.get("fault") == "crash" \
                and env.headers.get("service", service) == service else None  # a stranger's directive: ignored
            if crash_at:  # process() would os._exit this very process: the stub acts the crash out itself
                env = msgspec.structs.replace(env, headers={k: v for k, v in env.headers.items() if k not in ("fault", "at")})
            outcome = process(env, service=service, worker=worker.name, ledger=worker.ledger, guard=self.options.guard)
            if (after := next_service(service)) is not None:
                follow_up.append(Delivery(after, encode(forward(env, outcome)), delivery.key))
            if crash_at and outcome.attempt == 1:
                self.crash(worker, follow_up if crash_at == "after-output" else [])
                raise WorkerKilled(worker.name)
        except (MalformedMessage, PermanentError) as exc:
            return self._settle(worker, delivery, dead=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # TransientError or a bug in the handler: retried, like every stack does
            if delivery.retries < self.options.max_retries:
                delay = self.options.backoff_ms * 2 ** delivery.retries / 1000
                retry = replace(delivery, retries=delivery.retries + 1, not_before=time.time() + delay, holder=None)
                return self._settle(worker, delivery, follow_up=[retry])
            return self._settle(worker, delivery, dead=f"retries exhausted after {delivery.retries + 1} attempts: "
                                                       f"{type(exc).__name__}: {exc}")
        self._settle(worker, delivery, follow_up=follow_up)

    def _settle(self, worker: ThreadWorker, delivery: Delivery, follow_up: Sequence[Delivery] = (),
                dead: str | None = None) -> None:
        """Follow-ups (next step, retry) and the dead letter first, then the ack — all or nothing if killed."""
        with self.cond:
            if worker.killed.is_set():
                raise WorkerKilled(worker.name)
            self.messages += follow_up
            if dead is not None:
                workload = handler_for(delivery.service).workload
                self.dead.setdefault(workload, []).append(DeadLetter(delivery.service, delivery.payload, dead))
            if delivery in self.messages:
                self.messages.remove(delivery)  # the ack
            self.cond.notify_all()

    def crash(self, worker: ThreadWorker, sent: Sequence[Delivery] = ()) -> int:
        """Kill ``worker``: no more ledger writes; what it held unacked is delivered again."""
        with self.cond:
            worker.killed.set()
            self.messages += sent
            self.messages = [d for d in self.messages if not (d.holder == worker.name and d.acked)]  # acked: gone
            for d in self.messages:
                if d.holder == worker.name:
                    d.holder = None  # unacked: the broker delivers it again
            self.cond.notify_all()
        return worker.pid

    def leave(self, worker: ThreadWorker, timeout: float) -> None:
        """A warm shutdown: finish the message in hand, take no other. (A killed one is not waited for.)"""
        if worker.killed.is_set():
            return
        with self.cond:
            worker.stopping = True
            self.cond.notify_all()
        for thread in worker.threads:
            thread.join(timeout)

    # -- the broker's view ------------------------------------------------------------------------------
    def _pending(self, workload: str) -> list[Delivery]:
        services = set(WORKLOADS[workload].services)
        return [d for d in self.messages if d.service in services]

    def join(self, workload: str, timeout: float = 60.0) -> None:
        """Block until nothing of ``workload`` is ready, delayed or held (StubBroker.join)."""
        with self.cond:
            if not self.cond.wait_for(lambda: not self._pending(workload), timeout):
                left = [(d.service, d.holder or "ready") for d in self._pending(workload)]
                raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for the stub's {workload} queues "
                                  f"to empty ({len(left)} left, e.g. {left[:3]})")

    drain = join

    def backlog(self, workload: str) -> int:
        with self.cond:
            return sum(1 for d in self._pending(workload) if not d.acked)

    def in_flight(self) -> dict[str, int]:
        if self.acts.pull_based:
            return {}
        with self.cond:
            return {w.name: sum(1 for d in self.messages if d.holder == w.name)
                    for w in self._threads().workers if w.returncode is None} if self.pool else {}

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        with self.cond:
            return list(self.dead.get(workload, []))

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        with self.cond:
            if self.acts.replayable:
                return self.log.get(workload, 0)
            entry = set(self._entry(workload))
            return sum(1 for d in self.messages if d.service in entry and d.holder is None)
