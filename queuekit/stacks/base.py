"""The Stack template: what the harness needs from each framework, and one lifecycle for all.

One subclass per app package (``celery_app.stack:CeleryStack``, …), found
through ``queuekit.stacks.registry``. The base class owns the worker
processes and the lifecycle; a subclass declares what it is (``name``,
``worker_module``, ``capabilities``) and everything else the harness needs to
know about it (raw publisher, observer, libraries, cluster promise, …: see the
class attributes below and ``queuekit/stacks/declaration.py``, which the
registry runs on it), and implements the broker-specific parts.

The lifecycle rule, written once (subclasses do not override these):

* ``start(workloads, options)`` stops a previous run, declares the topology,
  spawns ``options.workers`` worker processes and returns once every one
  consumes (``consumers_ready``).
* ``stop()`` is idempotent: SIGTERM the workers (a warm shutdown: they finish
  or hand back what they hold), then close the driver's own clients.
* ``reset(workloads)`` = ``stop()`` then ``purge(workloads)``: only what the kit created for those
  workloads (default: every workload), so any scenario runs in any order and ``queuekit run`` leaves
  another workload's dead letters alone; returns (and logs) what it deleted (``queuekit.stacks.reset``).
* ``kill_worker`` / ``add_worker`` / ``stop_worker`` / ``kill_worker_holding``
  act on worker processes by index; a worker's identity is data
  (``worker_name(index)``), never parsed from a string.

What a subclass implements:

* ``declare`` the topology; ``consumers_ready`` from the broker's own view;
  ``purge``; ``close_clients``;
* ``publish`` returns only after the broker confirmed (or refused) every
  message; ``publish_raw`` sends bytes as they are; optionally
  ``publish_delayed`` (the base refuses: ``NoDelayedDelivery``);
* ``drain`` polls the broker's view until nothing of the workload is ready or
  in flight and raises ``WaitTimeout`` naming what is left; ``backlog``;
  ``in_flight``; ``dead_letters`` reads the dead-letter place without
  consuming it; ``replay`` asks a brand-new consumer what history it can read.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope
from queuekit.core.errors import KitError, NoDelayedDelivery
from queuekit.core.ledger import LEDGER_ENV, Ledger
from queuekit.core.options import StackOptions, options_env
from queuekit.core.waiting import wait_for
from queuekit.core.worker_env import FAULTS_ENV  # "1": the workers act out the harness's fault directives
from workloads import WORKLOADS

from . import manifest
from .capabilities import Capabilities, on_version
from .declaration import ClusterPromise, RetryTiming
from .manifest import KitObject
from .pool import WorkerPool
from .reset import Purged

READY_TIMEOUT = 60.0  # seconds for every worker to consume after a start / join


@dataclass(frozen=True)
class PublishReport:
    confirmed: int  # envelopes the broker confirmed (every copy of each)
    refused: int = 0  # nacked / rejected by the broker (e.g. a full queue)
    seconds: float = 0.0
    broker_messages: int = 0  # messages the broker confirmed in all (one per copy: producer-side fan-out sends several)

    @property
    def messages_per_envelope(self) -> float:
        return self.broker_messages / max(1, self.confirmed + self.refused)


@dataclass(frozen=True)
class DeadLetter:
    service: str  # which queue / consumer it died in
    payload: bytes  # the original bytes, so nothing is lost
    reason: str  # why: the decode error or the last exception


class Stack(ABC):
    name: ClassVar[str]  # the registry alias: the column of the comparison
    worker_module: ClassVar[str]  # ``python -m <worker_module> <workload>…`` runs one worker process
    capabilities: ClassVar[Capabilities]  # what the stack is, as data: scenario expectations derive from it
    # what changes with its broker's version, as data: version -> the capability fields that change from it on
    # ({"4.0": {"default_delivery_limit": 20}}); ``capabilities_on(version)`` applies them
    capabilities_since: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # -- what the harness needs to know, declared here and nowhere else (queuekit/stacks/declaration.py checks
    # them when the registry loads the class; a missing required one fails at once, naming it) -------------
    raw_publisher: ClassVar[str]  # "module:callable": callable(stack).send(hostile item) (the hostile suite)
    observer: ClassVar[str | None]  # "module" with observe()/links() for the dashboard; None: no live view
    libraries: ClassVar[tuple[str, ...]]  # distributions it runs on (versions from importlib.metadata)
    cluster: ClassVar[ClusterPromise | None]  # in the cluster fault scenarios, with its promise; None: not
    # optional, with their defaults:
    by_hand: ClassVar[str | None] = None  # "module" with declare()/commands(); None: `queuekit worker` runs the pool
    client_loggers: ClassVar[tuple[str, ...]] = ()  # loggers its clients write to: outages counted for its broker
    # ...of which those whose lines reach Python late (after the cell that caused them): file only, no outage
    late_client_loggers: ClassVar[tuple[str, ...]] = ()
    bare_twin: ClassVar[str | None] = None  # "module:Twin" the bench runs beside it; None: measured alone
    variant_of: ClassVar[str | None] = None  # the same app on another broker setup: not a framework of its own
    cell_cost: ClassVar[int] = 1  # relative length of its cells: compare starts the costliest lanes first
    # compare gives its cells a vhost of their own on the kit's RabbitMQ, so they run beside its family's
    # (a variant declaring its family's queue names)
    own_vhost: ClassVar[bool] = False
    retry_timing: ClassVar[RetryTiming] = RetryTiming()  # the contract's retry windows; default: lower bounds
    # The harness's workers act out fault directives in message headers (crash, slow, idempotency off);
    # False starts them as a deployment would, ignoring such headers from strangers (the hostile suite).
    harness_faults: bool = True
    # Where an input of the hostile corpus (``queuekit.suite.hostile``, by name) ends on THIS stack when that
    # is not the corpus's own expectation for its protocol or broker: a finding of this framework (its frame
    # limit, a transport without remote control), each with its reason beside it. Empty: the corpus decides.
    hostile_outcomes: ClassVar[Mapping[str, str]] = {}
    # StackOptions fields that make this stack "written for throughput" where its default is written for clarity
    # (kafka_share: one commit per poll instead of per record); ``queuekit bench`` measures them as a row beside.
    throughput_options: ClassVar[dict[str, Any]] = {}
    # The raw client whose latency curve ``queuekit bench`` draws beside this stack's (a family of
    # ``queuekit.bench.raw_latency.RUNS``). None: its broker's ("rabbitmq": pika, "kafka": confluent-kafka,
    # "redis": redis-py); a stack on another protocol of its broker names that client's family.
    raw_reference: ClassVar[str | None] = None

    def __init__(self, settings: Settings, ledger_path: Path):
        self.settings = settings
        self.ledger_path = Path(ledger_path)
        self.options = StackOptions()
        self.workloads: tuple[str, ...] = ()
        self.pool: WorkerPool | None = None

    @property
    def broker(self) -> str:
        return self.capabilities.broker

    @classmethod
    def capabilities_on(cls, version: str | None) -> Capabilities:
        """What the stack is on its broker's ``version`` (None: unknown, the declaration as it stands)."""
        return on_version(cls.capabilities, cls.capabilities_since, version)

    # -- the lifecycle (the template: subclasses implement the hooks below) ---------------------
    def start(self, workloads: Sequence[str], options: StackOptions = StackOptions()) -> None:
        self.prepare(workloads, options)
        for index in range(self.options.workers):
            self._spawn(index)
        self.wait_workers_ready()

    def prepare(self, workloads: Sequence[str], options: StackOptions = StackOptions()) -> None:
        """Everything ``start`` does but start workers: the queues / topics are declared and publishing works
        (the bench builds a backlog this way, then starts every worker at once)."""
        self.stop()
        self.workloads = tuple(dict.fromkeys(workloads))
        self.options = self.prepare_options(options)
        manifest.claim(self.settings, self.kit_objects(), self.listed_objects)  # a foreign name stops us; ours recorded
        self.declare()
        self.pool = self.make_pool()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()  # SIGTERM: a warm shutdown; what a worker holds unacked goes back to the broker
            self.pool = None
        self.close_clients()

    def reset(self, workloads: Sequence[str] = (), say: Callable[[str], None] | None = None) -> Purged:
        """Stop, then delete what the kit created for ``workloads`` (every workload when empty), dead letters
        included; an object another workload uses too stays unless every workload is reset. What was deleted
        goes to ``say``, one line per kind (else to the ``queuekit.reset`` log: dead letters as a warning)."""
        self.stop()
        chosen = tuple(dict.fromkeys(workloads)) or tuple(WORKLOADS)
        manifest.claim(self.settings, self.kit_objects(chosen), self.listed_objects)  # purge deletes these: never foreign
        purged = self.purge(chosen)
        where = f"{self.name}/{','.join(chosen) if workloads else 'every workload'}"
        if say is None:
            purged.log(where)
        else:
            for line in purged.lines(where):
                say(line)
        return purged

    def _spawn(self, index: int) -> None:
        self._running().spawn(self._running().python(self.worker_module, *self.workloads), index)

    def wait_workers_ready(self) -> None:
        """Poll the broker until every live worker consumes; a worker that dies meanwhile fails the wait."""
        pool = self._running()
        pool.wait_ready(self.consumers_ready, timeout=READY_TIMEOUT,
                        what=f"{len(pool.pids())} {self.name} worker(s) consuming {', '.join(self.workloads)}",
                        describe=self.describe_consumers)

    def _running(self) -> WorkerPool:
        if self.pool is None:
            raise RuntimeError(f"{self.name}: no workers; call start() first")
        return self.pool

    # -- workers joining, leaving and dying -------------------------------------------------------
    def worker_name(self, index: int) -> str:
        """The name worker ``index`` records in the ledger (its identity as data)."""
        return self._running().name(index)

    def worker_index(self, name: str) -> int:
        return self._running().index_of(name)

    def kill_worker(self, index: int) -> int:
        """SIGKILL worker ``index`` (with its children): nothing is acked, the connection just drops."""
        return self._running().kill(index)

    def kill_worker_holding(self, service: str, key: str, timeout: float = 30.0) -> int:
        """Wait until a worker is inside ``key``'s handler in ``service``, SIGKILL that worker; its pid."""
        ledger = Ledger(self.ledger_path)
        holders = wait_for(lambda: [a for a in ledger.attempts_for(service, key) if a.finished_at is None],
                           timeout=timeout, what=f"a {self.name} worker to start {key} in {service}")
        # the first to start it (on a stream every reader gets the message: several may hold it at once)
        return self.kill_worker(self.worker_index(holders[0].worker))

    def add_worker(self) -> int:
        """A consumer joins mid-stream: one more worker process; returns its index once it consumes."""
        index = len(self._running().procs)
        self._spawn(index)
        self.wait_workers_ready()
        return index

    def stop_worker(self, index: int, timeout: float = 30.0) -> None:
        """A consumer leaves cleanly: SIGTERM worker ``index`` and wait for it to exit (warm shutdown)."""
        self._running().stop_one(index, timeout)

    def worker_rss_bytes(self) -> list[int]:
        """Resident memory of each worker process (with its children)."""
        return [self.pool.rss_bytes(i) for i in range(len(self.pool.procs))] if self.pool else []

    def worker_pids(self) -> list[int]:
        return self.pool.pids() if self.pool else []

    # -- the broker ----------------------------------------------------------------------------------
    def restart_broker(self) -> None:
        """Stop the broker this stack uses (SIGTERM, as in a rolling restart) and start it again.

        Only for brokers the kit manages; clients are expected to reconnect by themselves."""
        from queuekit import brokers  # the driver's broker control; not needed by the stacks otherwise

        [component] = brokers.components(self.settings, (self.broker,))
        component.stop(lambda _: None)
        component.start(lambda _: None)

    def kill_broker(self) -> None:
        """SIGKILL the broker this stack uses (its whole process tree: no shutdown hook runs), wait until its
        ports are free, and start it again on the same data directory.

        Only for single brokers the kit manages (a cluster's nodes are hurt one at a time: ``inject_fault``);
        clients are expected to reconnect by themselves."""
        from queuekit import brokers  # the driver's broker control; not needed by the stacks otherwise

        [component] = brokers.components(self.settings, (self.broker,))
        kill = getattr(component, "kill", None)  # the kit's own single-node brokers; not External, not a cluster
        if kill is None:
            raise KitError(f"{self.name}: the kit cannot SIGKILL its {self.broker} broker "
                           f"({type(component).__name__}, topology {self.settings.topology})",
                           "kill_broker needs a single broker the kit started (queuekit up)")
        if not kill(lambda _: None):
            raise KitError(f"{self.name}: no {self.broker} process of the kit's to kill", "start it: queuekit up")
        component.start(lambda _: None)

    def inject_fault(self, kind: str, node: int):
        """Cluster topology: hurt node ``node`` of this stack's broker (kill | pause | partition |
        partition-clients; queuekit/brokers/faults.py). Returns the record ``heal_fault`` takes."""
        from queuekit.brokers.faults import Faults

        return Faults(self.settings).inject(kind, self.broker, node)

    def heal_fault(self, record) -> None:
        """Undo ``inject_fault``: restart the killed node, resume the paused one, remove the cut."""
        from queuekit.brokers.faults import Faults

        Faults(self.settings).heal(record)

    def fault_target(self, service: str) -> str:
        """The queue / topic holding ``service``'s messages: the cluster scenarios hurt its leader
        (queuekit/suite/stack_probe.py). A stack without one cannot run through a fault, and says so."""
        raise KitError(f"{self.name} names no queue or topic whose leader a fault could hurt",
                       f"implement fault_target in {type(self).__module__}")

    # -- hooks: the broker-specific parts --------------------------------------------------------------
    def make_pool(self) -> WorkerPool:
        """The worker processes of a run: ``python -m worker_module`` with the ledger and options in their env.
        (Only the in-memory StubStack runs its workers as threads instead.)"""
        return WorkerPool(self.name, self.ledger_path.parent / "logs",
                          env={LEDGER_ENV: str(self.ledger_path), **options_env(self.options),
                               FAULTS_ENV: "1" if self.harness_faults else "0",
                               "QUEUEKIT_TOPOLOGY": self.settings.topology,  # workers reach the driver's brokers
                               "QUEUEKIT_PORT_OFFSET": str(self.settings.port_offset),  # (a kit beside the env's)
                               **({"QUEUEKIT_RABBIT_VHOST": self.settings.rabbit_vhost}  # and its vhost
                                  if self.settings.rabbit_vhost else {})})

    def prepare_options(self, options: StackOptions) -> StackOptions:
        """Adjust the run's options before anything starts (e.g. to a broker's minimum); default: as given."""
        return options

    @abstractmethod
    def declare(self) -> None:
        """Create the queues / exchanges / topics of ``self.workloads`` with ``self.options``."""

    @abstractmethod
    def consumers_ready(self) -> bool:
        """True when the broker sees every live worker consuming (consumers / group assignment)."""

    def describe_consumers(self) -> str:
        """What the broker shows while ``consumers_ready`` is false (for the timeout message)."""
        return ""

    @abstractmethod
    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """Delete what the kit created for ``workloads`` on this stack (queues, topics, groups, keys), by name,
        and say what existed; an object another workload uses too only when ``workloads`` is every one
        (``queuekit.stacks.reset.only``); idempotent."""

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        """Every named object this stack may create on its broker for ``workloads``: what ``purge`` deletes.
        On an external broker they are claimed in this install's manifest before anything is declared or
        deleted (``queuekit.stacks.manifest``). None: a stack without a broker (StubStack)."""
        return []

    def listed_objects(self, brokers: set[str]) -> manifest.Listed:
        """(kind, name) of what exists on each of ``brokers`` now, for ``kit_objects``' names: what a claim
        compares with the manifest. A stack whose objects the admin clients cannot list adds them."""
        return manifest.existing_objects(self.settings, brokers)

    def close_clients(self) -> None:
        """Close the driver's producer / admin connections (they are made again on demand)."""
        return None  # a stack whose driver holds no connection has nothing to close

    @abstractmethod
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        """Send to the workload's entry point; return once the broker confirmed (or refused) each."""

    def publish_delayed(self, workload: str, envelopes: Sequence[Envelope], delay_s: float) -> PublishReport:
        """Like ``publish``, each message due ``delay_s`` seconds from now (an ETA / countdown / delay), held
        by the framework or the broker until then (``capabilities.delayed`` says which). A stack without a
        delayed delivery of its own refuses, naming itself: the scenario reports that, never a silent pass."""
        raise NoDelayedDelivery(f"no delayed delivery on {self.name}",
                                "its capabilities declare delayed='none'; publish at the due time instead")

    @abstractmethod
    def publish_raw(self, workload: str, payload: bytes) -> None:
        """Send bytes as they are (malformed input must reach the dead-letter place)."""

    @abstractmethod
    def drain(self, workload: str, timeout: float = 60.0) -> None:
        """Return when nothing of ``workload`` is ready or in flight; raise WaitTimeout otherwise."""

    @abstractmethod
    def backlog(self, workload: str) -> int:
        """Messages not yet settled: ready + unacked (queues) or consumer lag (logs)."""

    @abstractmethod
    def in_flight(self) -> dict[str, int]:
        """Per consumer: messages delivered to it and not yet acknowledged (empty where pull-based)."""

    @abstractmethod
    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """Everything in the workload's dead-letter place, read without consuming it."""

    @abstractmethod
    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new consumer reads the workload's entry point from the start: how many past messages it got."""

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
