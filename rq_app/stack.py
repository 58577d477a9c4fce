"""RQStack: RQ (python-rq), the simplest Python queue, on the kit's Redis, behind the Stack protocol.

Keys (``topology.py``): RQ's own ``rq:…`` names, in a database of RQ's own (``topology.KIT_DB`` = 1 on the
kit's Redis; ``QUEUEKIT_RQ_DB`` required on an external one). One queue per service, named as the service.
Workers: ``options.workers`` processes of ``python -m rq_app.worker`` (a ``SimpleWorker`` each: the job runs
in the process the pool kills) plus one scheduler process (``scheduler.py``) that moves retries and delayed
jobs back to their queues. JSON only (``jobs.SERIALIZER``): no pickle on any side.

Options on this stack:

* ``workers``: worker processes; ``kill_worker(i)`` SIGKILLs the one running the job.
* ``concurrency``, ``prefetch``: ignored. An RQ worker runs one job at a time and pops the next job id
  only when free (no prefetch).
* ``max_retries``, ``backoff_ms``: ``rq.Retry(max=max_retries, interval=[backoff_ms * 2**n])`` (seconds);
  a retry waits in the scheduled registry and the scheduler's 1 s tick moves it back. MalformedMessage and
  PermanentError are never retried (the job sets ``retries_left = 0``). Then: the failed-job registry.
* ``early_ack``: NOT SUPPORTED, ignored. RQ sends no acknowledgement at all: a popped job sits in the
  started registry; a worker SIGKILLed mid-job leaves it there until the job timeout (``jobs.JOB_TIMEOUT_S``
  = 20 s) + 5 s have passed, then a live worker's maintenance retries it (retries left) or fails it as
  ``AbandonedJobError``.
* ``queue_max_length``: ignored: an RQ queue is a Redis list, nothing bounds it (the backlog grows).
* ``guard``: passed to ``process()``. ``partitions``, ``queue_type``, ``delivery_limit``: ignored.

* Supports Fanout: No (the producer enqueues one job per subscriber queue)
* Supports per-key order: No (whichever worker is free pops the next job)
* Supports replay: No (a popped job id is gone from the list; a finished job's hash expires after 60 s)
* Dead letters: RQ's FailedJobRegistry (``rq:failed:<queue>``), with the traceback's last line
* Delayed jobs: ``publish_delayed`` = ``Queue.enqueue_in``, moved by the scheduler process
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from rq import Queue

from queuekit.core.envelope import Envelope, encode
from queuekit.core.waiting import wait_for
from queuekit.stacks.base import DeadLetter, PublishReport, Stack
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import RetryTiming
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import dead_letters, jobs, topology
from .scheduler_process import SchedulerProcess

REGISTRIES = ("wip", "failed", "scheduled", "finished", "deferred", "canceled")  # rq:<registry>:<queue>


class RQStack(Stack):
    name = "rq"
    worker_module = "rq_app.worker"
    capabilities = Capabilities(
        broker="redis",
        native_fanout=False,  # RQ has no fan-out: one job per subscriber queue, enqueued by the producer
        per_key_order=False,  # a queue hands the next job to whichever worker is free
        replayable=False,  # a popped job is gone from the list; a finished one's hash expires
        dead_letter="native",  # RQ moves a job out of retries to its FailedJobRegistry itself
        ack_on_receipt_possible=False,  # RQ has no ack to send early: the job is "started" until it ends
        transactions=False,
        pull_based=True,  # workers pop; nothing refuses a producer (an RQ queue has no length limit)
        evicts_slow_consumer=False,  # a long job is killed at its job timeout (20 s), not taken away
        # A job whose worker died is retried as AbandonedJobError against the same Retry.max as a failure:
        # past max_retries it goes to the failed registry, however often the handler itself raised (0 times)
        delivery_limit=True,
        # enqueue_in: the job waits in RQ's ScheduledJobRegistry (a sorted set in Redis) and the scheduler moves it
        # to its queue when due; no worker holds it meanwhile, so a worker restart does not touch it
        delayed="broker",
        retry_delay="coarse",  # the scheduler moves due jobs every INTERVAL_S (1 s): sub-second waits all read ~1 s
    )
    raw_publisher = "rq_app.raw_publisher:RawPublisher"  # RQ job hashes written with redis-py
    observer = "rq_app.observe"
    libraries = ("rq", "redis")
    client_loggers = ("rq.worker", "rq.scheduler")
    cluster = None  # not yet run through the Sentinel faults (docs/redis.md, section rq)
    bare_twin = "bare.rq_worker:publish_backlog"
    # Retry n waits backoff * 2**n s after the failure, rounded up to the scheduler's 1 s tick
    retry_timing = RetryTiming(200, "finish", (0.2, 2.5), (0.4, None))

    def __init__(self, settings, ledger_path):
        super().__init__(settings, ledger_path)
        self._client = None
        self.scheduler = SchedulerProcess(self)

    @property
    def client(self):
        if self._client is None:
            self._client = topology.connection(self.settings)  # RQ's database; raises naming QUEUEKIT_RQ_DB
        return self._client

    def _queue(self, service: str) -> Queue:
        return Queue(topology.queue_name(service), connection=self.client, serializer=jobs.SERIALIZER,
                     job_class=jobs.KitJob)

    # -- the template's hooks ------------------------------------------------------
    def declare(self) -> None:
        self.client.ping()  # RQ creates its keys on first use: nothing to declare but the scheduler
        self.scheduler.start()

    def _live_rq_workers(self) -> set[int]:
        """Pids of the workers RQ has registered (``rq:workers``), alive or not yet expired."""
        pids = set()
        for key in self.client.smembers("rq:workers"):
            pid = self.client.hget(key, "pid")
            if pid and not self.client.hexists(key, "death"):
                pids.add(int(pid))
        return pids

    def consumers_ready(self) -> bool:
        return set(self.worker_pids()) <= self._live_rq_workers() and self.scheduler.ready()

    def describe_consumers(self) -> str:
        return f"RQ workers registered: {sorted(self._live_rq_workers())}; scheduler ready: {self.scheduler.ready()}"

    def close_clients(self) -> None:
        self.scheduler.stop()
        if self._client is not None:
            self._client.close()
            self._client = None

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """RQ's keys of the queues of ``workloads`` (no queue serves two), by name (queue, its intermediate list,
        registries, their jobs and results; the failed registry's jobs counted as dead letters); never FLUSHDB,
        never a key of another queue."""
        purged = Purged()
        for queue in dict.fromkeys(q for w in workloads for q in map(topology.queue_name, topology.services(w))):
            lists = [f"rq:queue:{queue}", f"rq:queue:{queue}:intermediate"]
            registries = [f"rq:{r}:{queue}" for r in REGISTRIES]
            ids = {i for key in lists for i in self.client.lrange(key, 0, -1)}
            ids |= {i for key in registries for i in self.client.zrange(key, 0, -1)}
            purged.dead({f"rq:failed:{queue}": self.client.zcard(f"rq:failed:{queue}")})
            purged.deleted("key", [k for k in [*lists, *registries] if self.client.exists(k)])
            purged.deleted("job", sorted(i.decode() for i in ids))
            doomed = [*lists, *registries, f"rq:scheduler-lock:{queue}"]
            doomed += [f"rq:{kind}:{i.decode()}" for i in ids for kind in ("job", "results", "executions")]
            for at in range(0, len(doomed), 500):
                self.client.unlink(*doomed[at:at + 500])
            self.client.srem("rq:queues", f"rq:queue:{queue}")
        return purged

    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        t0, sent = time.monotonic(), 0
        for env in envelopes:
            arg = encode(env).decode("utf-8", "surrogateescape")
            for service in topology.entry_services(workload):  # tracking: one job per subscriber queue
                jobs.enqueue(self.client, service, (arg,), self.options)  # returns once Redis stored it
                sent += 1
        return PublishReport(confirmed=len(envelopes), seconds=time.monotonic() - t0, broker_messages=sent)

    def publish_delayed(self, workload: str, envelopes: Sequence[Envelope], delay_s: float) -> PublishReport:
        """``Queue.enqueue_in``: each job waits in the scheduled registry; the scheduler process moves it to its
        queue when due (at its 1 s tick)."""
        t0, sent = time.monotonic(), 0
        for env in envelopes:
            arg = encode(env).decode("utf-8", "surrogateescape")
            for service in topology.entry_services(workload):
                self._queue(service).enqueue_in(timedelta(seconds=delay_s), jobs.STEPS[service], arg,
                                                retry=jobs.retry_for(self.options), job_timeout=jobs.JOB_TIMEOUT_S,
                                                result_ttl=jobs.RESULT_TTL_S)
                sent += 1
        return PublishReport(confirmed=len(envelopes), seconds=time.monotonic() - t0, broker_messages=sent)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        """The bytes as the job argument of a well-formed RQ job (the job refuses them)."""
        for service in topology.entry_services(workload):
            jobs.enqueue(self.client, service, (payload.decode("utf-8", "surrogateescape"),), self.options)

    def _unsettled(self, workload: str) -> dict[str, int]:
        """Per queue: queued + popped-not-started + started + scheduled (a retry waiting), read raw (RQ's own
        ``count`` would clean the registries: the harness observes, the workers' maintenance acts)."""
        out = {}
        for s in topology.services(workload):
            q = topology.queue_name(s)
            out[q] = (self.client.llen(f"rq:queue:{q}") + self.client.llen(f"rq:queue:{q}:intermediate")
                      + self.client.zcard(f"rq:wip:{q}") + self.client.zcard(f"rq:scheduled:{q}"))
        return out

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        """Every queue of the workload empty, nothing started or scheduled. A follow-up step is enqueued before
        its predecessor finishes, so a zero means done."""
        wait_for(lambda: not any(self._unsettled(workload).values()), timeout=timeout,
                 what=f"rq queues of {workload} settled", describe=lambda: str(self._unsettled(workload)))

    def backlog(self, workload: str) -> int:
        return sum(self._unsettled(workload).values())

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        return [d for s in topology.services(workload)
                for d in dead_letters.read(self.client, s, f"rq:failed:{topology.queue_name(s)}")]

    def in_flight(self) -> dict[str, int]:
        """Per RQ worker: 1 while it runs a job (RQ holds no more than one)."""
        out = {}
        for key in self.client.smembers("rq:workers"):
            name = key.decode().removeprefix("rq:worker:")
            out[name] = int(bool(self.client.hget(key, "current_job")))
        return out

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """What a brand-new worker could still read: the jobs still queued (popped ones are gone)."""
        return sum(self.client.llen(f"rq:queue:{topology.queue_name(s)}") for s in topology.entry_services(workload))

    def fault_target(self, service: str) -> str:
        return f"rq:queue:{topology.queue_name(service)}"
