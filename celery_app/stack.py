"""CeleryStack: Celery 5 workers over RabbitMQ, as the harness drives them.

What each option does here:

* ``workers``      worker OS processes (``python -m celery_app.worker``), node names celery-<i>@host.
* ``concurrency``  slots per process, ``--pool=threads`` (no child processes, so ``kill_worker``
                   SIGKILLs the slots with the process; not solo: see worker.py).
* ``prefetch``     ``worker_prefetch_multiplier``: the channel's basic.qos is prefetch x concurrency,
                   the bound on unacked messages per worker (retries waiting for their eta raise it:
                   Celery holds eta messages unacked and bumps the qos for them).
* ``guard``        passed to ``process()`` (the ledger's idempotency guard).
* ``max_retries``  retries after the first attempt (``self.retry``), then the dead-letter queue.
* ``backoff_ms``   the first retry's countdown; doubles per retry (backoff_ms * 2**n).
* ``early_ack``    ``task_acks_late=False`` (Celery's default): acked when the pool starts the task,
                   so a SIGKILL mid-task loses it (with the thread pool; under ``--pool=solo`` that ack
                   only leaves after the task, see worker.py). Otherwise acks_late +
                   reject_on_worker_lost: acked after the task returns, redelivered when the worker dies.
* ``queue_max_length``  ``x-max-length`` + ``x-overflow=reject-publish`` on the entry queue(s) (both
                   tracking queues); the broker nacks what does not fit and ``publish`` counts it refused.
* ``queue_type``   ``classic`` (default) or ``quorum`` (``celery_quorum`` sets it; see quorum.py and
                   topology.py): x-queue-type on every queue, topic ``celery.tasks``, native delays.
* ``delivery_limit``  quorum only: ``x-delivery-limit`` (broker redeliveries before it dead-letters).
* ``partitions``  unused; ``task_events=False``: no Flower task events, ``loglevel``:
                   the worker's log level (INFO; the bench runs both as a plain Celery app does).

Delivery: publisher confirms (kombu ``confirm_publish``); a signup is one task, a video is a
chain transcode | thumbnail | notify (each step's result is the next one's first argument), a
tracking event is one task message to the fanout exchange ``celery.tracking`` (see topology.py).
Dead letters: ``celery.<service>.dlq``, holding the original envelope bytes and a reason header
(see tasks.py); ``dead_letters`` peeks them through the management API.
``publish_delayed``: ``apply_async(countdown=…)``; held unacked by a worker until due on classic queues,
by the broker on quorum queues (Celery's native delayed delivery, see CeleryQuorumStack).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from celery import Celery
from kombu import Queue, binding

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope, encode
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise, RetryTiming
from queuekit.stacks.manifest import KitObject
from queuekit.stacks.rabbitmq import Management
from queuekit.stacks.reset import Purged, only
from workloads import WORKLOADS

from . import producer, topology
from .app import make_app
from .dead_letters import dead_letter


class CeleryStack(Stack):
    name = "celery"
    # frames.MAX_FRAME_BYTES: the worker's own frame limit, checked before the envelope's
    hostile_outcomes = {"2-mib": "dead: over the 1048576-byte limit"}
    worker_module = "celery_app.worker"
    capabilities = Capabilities(
        broker="rabbitmq",
        native_fanout=True,  # the fanout exchange celery.tracking copies each event into every service's queue
        per_key_order=False,  # a work queue hands the next message to whichever worker is free
        replayable=False,  # an acked message is deleted
        dead_letter="adapter",  # Celery acks failures; ours are published to celery.<service>.dlq by the task
        ack_on_receipt_possible=True,  # task_acks_late=False, Celery's default
        transactions=False,
        pull_based=False,  # the broker pushes up to prefetch; a bounded queue nacks the publisher
        evicts_slow_consumer=False,  # consumer_timeout is 30 min here: a long task is just long
        delayed="framework",  # countdown/eta: the worker takes the task at once and holds it unacked until due
    )
    # -- what the harness needs to know (queuekit/stacks/declaration.py) --
    raw_publisher = "celery_app.raw_publisher:RawPublisher"  # task frames over AMQP with pika
    observer = "celery_app.observe"
    by_hand = "celery_app.by_hand"
    libraries: ClassVar[tuple[str, ...]] = ("celery", "kombu", "flower")
    client_loggers: ClassVar[tuple[str, ...]] = ("kombu", "amqp", "celery")
    cluster = ClusterPromise({}, "classic queue on one node: no replica; reconnecting is kombu's (measured)")
    bare_twin: ClassVar[str | None] = "bare.celery_worker:publish_backlog"
    cell_cost = 3  # Celery's workers boot slowest: its cells take two to three times as long as the others'
    retry_timing = RetryTiming(200, "start", (0.2, 0.35), (0.4, 0.6))  # countdown backoff_ms * 2**n, held unacked

    def __init__(self, settings: Settings, ledger_path: Path):
        super().__init__(settings, ledger_path)
        self.mgmt = Management(settings)
        self.app: Celery | None = None

    # -- the template's hooks ------------------------------------------------------
    def declare(self) -> None:
        with self._app().connection_for_write() as conn:
            topology.declare(conn.default_channel, self.workloads, self.options)

    def _app(self) -> Celery:
        if self.app is None:  # the producer side: the same configuration as the workers' app
            self.app = make_app(self.options, broker_url=";".join(self.settings.amqp_urls))  # cluster: failover
        return self.app

    def _consumed_queues(self) -> list[str]:
        return [topology.queue_name(s) for s in topology.services(self.workloads)]

    def consumers_ready(self) -> bool:
        live = len(self.worker_pids())
        return self.mgmt.consumers_on(self._consumed_queues(), topology.PREFIX) >= live

    def describe_consumers(self) -> str:
        return f"consumers per queue: {self.mgmt.consumer_counts(topology.PREFIX)}"

    def close_clients(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> list[KitObject]:
        work, dead = topology.kit_queues(workloads)
        return [KitObject("rabbitmq", "queue", q) for q in work + dead] + [
            KitObject("rabbitmq", "exchange", e) for e in topology.kit_exchanges(workloads)]

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """Our queues and exchanges of ``workloads`` BY NAME (``topology.kit_queues`` / ``kit_exchanges``), the
        shared ones only with every workload. Deleted, never redeclared: a queue's type is fixed, so classic ->
        quorum (or back) only works on a clean slate (else 406 PRECONDITION_FAILED; ``celery.tasks`` changes type
        too: a one-workload reset keeps it, and ``queuekit run`` resets every workload after such a refusal)."""
        purged = Purged()
        work = only(workloads, lambda ws: topology.kit_queues(ws)[0])
        dead = only(workloads, lambda ws: topology.kit_queues(ws)[1])
        self.mgmt.delete_kit_queues(work + dead, dead, purged)
        self.mgmt.delete_exchanges_named(only(workloads, topology.kit_exchanges), purged)
        return purged

    # -- producing -----------------------------------------------------------------
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        return self._send(workload, [encode(env).decode() for env in envelopes])

    def publish_delayed(self, workload: str, envelopes: Sequence[Envelope], delay_s: float) -> PublishReport:
        """``apply_async(countdown=delay_s)``. Classic queues: the task is delivered at once and the worker
        keeps it unacked (raising its QoS) until its eta. Quorum queues: Celery's native delayed delivery
        routes it through kombu's ``celery_delayed_*`` TTL queues on int(countdown) whole seconds, so the
        broker holds it; the worker still checks the eta it carries."""
        return self._send(workload, [encode(env).decode() for env in envelopes], countdown=delay_s)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        try:
            argument: str | bytes = payload.decode("utf-8")
        except UnicodeDecodeError:
            argument = payload  # kombu's JSON carries bytes as {"__type__": "base64", ...}
        self._send(workload, [argument])

    def _send(self, workload: str, arguments: list, countdown: float | None = None) -> PublishReport:
        """One task (or chain) per argument, each waiting for its publisher confirm (producer.py)."""
        return producer.send(self._app(), lambda argument: self._signature(workload, argument), arguments, countdown)

    def _signature(self, workload: str, argument):
        return producer.signature(self._app(), workload, argument)

    # -- the broker's view -------------------------------------------------------------
    def _work_queues(self, workload: str) -> list[str]:
        """Where the workload's messages wait: its queues, and (quorum) the delayed-delivery queues a
        retry waits in until its countdown is over (not in the worker, as on classic queues)."""
        delayed = [q.name for q in self.mgmt.queues(topology.DELAYED_PREFIX)] if self.options.queue_type == "quorum" else []
        return [topology.queue_name(s) for s in WORKLOADS[workload].services] + delayed

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        # ready + unacked of the work queues. No gap hides a message: retries (held unacked until their
        # eta) and the next chain step are published before the current message is acked.
        self.mgmt.wait_settled(self._work_queues(workload), timeout=timeout)

    def backlog(self, workload: str) -> int:
        return self.mgmt.backlog(self._work_queues(workload))

    def in_flight(self) -> dict[str, int]:
        """Per consumer channel on our work queues: delivered, not yet acked (management stats, ~1 s old)."""
        return self.mgmt.unacked_per_consumer_channel(topology.PREFIX, exclude_suffix=".dlq")

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new queue bound like the entry queue: what history can it read? (acked = deleted: none)"""
        entry = topology.work_queue(topology.entry_services(workload)[0], self.options)
        with self._app().connection_for_write() as conn:
            bindings = entry.bindings or [binding(topology.tasks_exchange(self.options), entry.routing_key)]
            fresh = Queue("", exclusive=True, bindings=bindings)
            name = fresh(conn.default_channel).declare()
            return conn.default_channel.queue_declare(name, passive=True).message_count

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        return [dead_letter(service, body, headers)
                for service in WORKLOADS[workload].services
                for body, headers in self.mgmt.peek(topology.dlq_name(service))]

    def fault_target(self, service: str) -> str:
        """The queue ``service``'s task is routed to: the cluster scenarios hurt its leader / home node."""
        return topology.queue_name(service)
