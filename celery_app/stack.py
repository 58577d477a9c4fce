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
* ``partitions``, ``extra``  unused.

Delivery: publisher confirms (kombu ``confirm_publish``); a signup is one task, a video is a
chain transcode | thumbnail | notify (each step's result is the next one's first argument), a
tracking event is one task message to the fanout exchange ``celery.tracking`` (see topology.py).
Dead letters: ``celery.<service>.dlq``, holding the original envelope bytes and a reason header
(see tasks.py); ``dead_letters`` peeks them through the management API.
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Sequence

from amqp.exceptions import MessageNacked
from celery import Celery, chain
from kombu import Queue, binding
from kombu.exceptions import OperationalError

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope, encode
from queuekit.stacks.rabbitmq import Management
from queuekit.core.options import StackOptions
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.pool import WorkerPool
from workloads import WORKLOADS

from . import topology
from .app import make_app

READY_TIMEOUT = 60.0


class CeleryStack(Stack):
    name = "celery"
    broker = "rabbitmq"
    native_fanout = True  # a fanout exchange copies each tracking event into every service's queue
    native_dead_letter = False  # Celery acks failures; ours are published to the DLQ by the task
    replayable = False  # an acked message is deleted

    def __init__(self, settings: Settings, ledger_path: Path):
        super().__init__(settings, ledger_path)
        self.mgmt = Management(settings)
        self.pool: WorkerPool | None = None
        self.app: Celery | None = None
        self.options = StackOptions()
        self.workloads: tuple[str, ...] = ()

    # -- lifecycle ---------------------------------------------------------------
    def start(self, workloads: Sequence[str], options: StackOptions = StackOptions()) -> None:
        self.stop()
        self.options = options
        self.app = make_app(options, broker_url=self.settings.amqp_url)
        with self.app.connection_for_write() as conn:
            topology.declare(conn.default_channel, workloads, options)
        self.workloads = tuple(workloads)
        self.pool = self.new_pool(options)
        for index in range(options.workers):
            self._spawn_worker(index)
        self._wait_workers_ready()

    def _spawn_worker(self, index: int) -> None:
        self.pool.spawn(self.pool.python("celery_app.worker", *self.workloads), index)

    def _wait_workers_ready(self) -> None:
        queues = [topology.queue_name(s) for s in topology.services(self.workloads)]
        live = len(self.pool.pids())
        self.pool.wait_ready(lambda: self._consumers_at_least(queues, live), timeout=READY_TIMEOUT,
                             what=f"{live} Celery worker(s) consuming {queues}")

    def _consumers_at_least(self, queues: list[str], n: int) -> bool:
        seen = {q.name: q.consumers for q in self.mgmt.queues(topology.PREFIX)}
        return all(seen.get(q, 0) >= n for q in queues)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()  # SIGTERM: warm shutdown; unacked (acks_late) messages go back to the queue
            self.pool = None
        if self.app is not None:
            self.app.close()
            self.app = None

    def kill_worker(self, index: int) -> int:
        if self.pool is None:
            raise RuntimeError("no workers: call start() first")
        return self.pool.kill(index)  # the worker process itself runs the slots (thread pool, no children)

    def reset(self) -> None:
        """Stop our workers, delete every celery.* queue and our exchanges (not Celery's own celery.pidbox)."""
        self.stop()
        self.mgmt.delete_queues(topology.PREFIX)
        for exchange in topology.EXCHANGES:
            self.mgmt.delete_exchanges(exchange.name)

    # -- producing -----------------------------------------------------------------
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        return self._send(workload, [encode(env).decode() for env in envelopes])

    def publish_raw(self, workload: str, payload: bytes) -> None:
        try:
            argument: str | bytes = payload.decode("utf-8")
        except UnicodeDecodeError:
            argument = payload  # kombu's JSON carries bytes as {"__type__": "base64", ...}
        self._send(workload, [argument])

    def _send(self, workload: str, arguments: list) -> PublishReport:
        if self.app is None:
            raise RuntimeError("call start() before publishing")
        began = time.monotonic()
        confirmed = refused = 0
        with self.app.producer_or_acquire() as producer:
            for argument in arguments:
                try:
                    # retry: reconnect on a lost connection (a broker restart); a nack is not retried
                    self._signature(workload, argument).apply_async(producer=producer, retry=True)
                    confirmed += 1
                except OperationalError as exc:  # Celery wraps the nack that confirm_publish raised
                    if not isinstance(exc.__cause__, MessageNacked):
                        raise
                    refused += 1  # the broker refused it (x-overflow=reject-publish): counted, not retried
        return PublishReport(confirmed, refused, time.monotonic() - began)

    def _signature(self, workload: str, argument):
        spec = WORKLOADS[workload]
        if spec.shape == "pipeline":  # a chain: each later step gets the previous result prepended to its args
            return chain(*[self.app.signature(topology.task_name(s), args=[argument]) for s in spec.services])
        # work queue: one task; fan-out: ONE task message that the fanout exchange copies per service
        return self.app.signature(topology.task_name(spec.services[0]), args=[argument])

    # -- the broker's view -------------------------------------------------------------
    def _work_queues(self, workload: str) -> list[str]:
        return [topology.queue_name(s) for s in WORKLOADS[workload].services]

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        # ready + unacked of the work queues. No gap hides a message: retries (held unacked until their
        # eta) and the next chain step are published before the current message is acked.
        self.mgmt.wait_settled(self._work_queues(workload), timeout=timeout)

    def backlog(self, workload: str) -> int:
        return self.mgmt.backlog(self._work_queues(workload))

    def in_flight(self) -> dict[str, int]:
        """Per consumer channel on our queues: delivered, not yet acked (management stats, about 1 s old)."""
        consumers = self.mgmt.http.get(f"/consumers/{self.mgmt.vhost}").json()
        ours = {c["channel_details"]["name"] for c in consumers
                if c["queue"]["name"].startswith(topology.PREFIX) and not c["queue"]["name"].endswith(".dlq")}
        return {ch["name"]: ch.get("messages_unacknowledged", 0) or 0
                for ch in self.mgmt.channel_prefetch_unacked() if ch["name"] in ours}

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """A brand-new queue bound like the entry queue: what history can it read? (acked = deleted: none)"""
        entry = topology.work_queue(topology.entry_services(workload)[0], self.options)
        with self.app.connection_for_write() as conn:
            fresh = Queue("", exclusive=True, bindings=entry.bindings or [binding(topology.TASKS, entry.routing_key)])
            name = fresh(conn.default_channel).declare()
            return conn.default_channel.queue_declare(name, passive=True).message_count

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        return [_dead_letter(service, body, headers)
                for service in WORKLOADS[workload].services
                for body, headers in self.mgmt.peek(topology.dlq_name(service))]


def _dead_letter(service: str, body: bytes, headers: dict) -> DeadLetter:
    """Ours carry the envelope bytes and a reason; the broker's (DLX) carry a whole Celery message."""
    if topology.REASON_HEADER in headers:
        return DeadLetter(service, body, headers[topology.REASON_HEADER])
    death = (headers.get("x-death") or [{}])[0]
    what = f"task {headers['task']!r}" if "task" in headers else "not a Celery task message"
    reason = f"{death.get('reason', 'dead-lettered')} by the Celery worker on {death.get('queue', '?')}: {what}"
    return DeadLetter(service, _task_argument(body), reason)


def _task_argument(body: bytes) -> bytes:
    """The first task argument of a Celery (protocol 2) body ``[args, kwargs, embed]``; else the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if not (isinstance(doc, list) and len(doc) == 3 and isinstance(doc[0], list) and doc[0]):
        return body
    argument = doc[0][0]
    if isinstance(argument, str):
        return argument.encode("utf-8")
    if isinstance(argument, dict) and argument.get("__type__") == "base64":
        return base64.b64decode(argument["__value__"])
    return body
