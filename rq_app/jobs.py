"""The jobs: one function per service, each a thin adapter over ``queuekit.core.execute.process``, and the
``KitJob`` class every side of the stack uses to read a job hash.

A job's single argument is the encoded envelope as a JSON string; a pipeline step gets the previous
step's result as its second. Delivery semantics, all RQ's own unless marked:

* returns -> RQ marks the job finished (its hash expires after ``RESULT_TTL_S``): there is no ack, the job
  left ``rq:queue:<q>`` when a worker popped it and sits in the started registry while it runs;
* raises -> with retries left RQ schedules it again after ``Retry.intervals``; then it moves to the
  failed-job registry with its traceback (``exc_info``): that registry is the stack's dead-letter place;
* ``MalformedMessage`` / ``PermanentError`` -> the job sets its own ``retries_left`` to 0 first (RQ has no
  "never retry these" list): straight to the failed registry.

JSON only: RQ pickles by default; the kit's queues, jobs and workers all use ``SERIALIZER`` (RQ's
JSONSerializer), so a pickled job from a stranger fails to decode (``DeserializationError``) and is never
unpickled. RQ also imports whatever function, callback or webhook a job hash names: ``KitJob`` runs only
the functions below and refuses a hash that names anything else.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from queuekit.core.envelope import MalformedMessage
from queuekit.core.execute import PermanentError, next_service, process
from queuekit.core.options import StackOptions
from queuekit.core.worker_env import this_worker

SERIALIZER = JSONSerializer  # never RQ's default pickle, on every side
JOB_TIMEOUT_S = 20  # RQ's job timeout: a job running longer is killed (SIGALRM) and fails like any exception
NEVER_RETRY = (MalformedMessage, PermanentError)
# How long a finished job's hash stays. Not 0 (delete at once): rq 3.0.0 deletes through
# ExecutionRegistry.get_executions, which raises on an execution hash already expired (a SIGKILLed run's),
# so a retried job's SUCCESS became a failure, was retried again and ended failed (measured; rq/rq#2436
# changes get_executions to drop missing executions). With a TTL RQ only sets an expiry.
RESULT_TTL_S = 60


class KitJob(Job):
    """A job hash read by the kit: anything it names besides the kit's own functions is refused, not imported."""

    refusal: str | None = None
    _retries_left_read: int | None = None

    def restore(self, raw_data) -> Any:
        try:
            super().restore(raw_data)
            self._retries_left_read = self.retries_left
        except Exception as exc:
            # A field RQ cannot parse (timeout "x", retries_left "y"): RQ's own worker quits on it ("found an
            # unhandled exception, quitting..."). No 'data' field: RQ drops the popped id silently
            # (NoSuchJobError). Either way the kit fails the job instead, with the reason, the hash kept.
            raw = {k.decode(): v for k, v in raw_data.items()}
            self.refusal = ("job hash has no 'data' field" if isinstance(exc, NoSuchJobError)
                            else f"unreadable job hash: {type(exc).__name__}: {exc}")
            if "data" not in raw:
                self.data = b""
            self.origin = raw.get("origin", b"").decode("utf-8", "replace")
            self.timeout, self.retries_left, self.retry_intervals = JOB_TIMEOUT_S, None, None
        if self.refusal is None:
            try:
                SERIALIZER.loads(self.data)  # the call, decoded now: a pickle is refused, never unpickled
            except Exception as exc:  # noqa: BLE001 - whatever the bytes are, the job fails with the reason
                self.refusal = f"job data is not JSON (the kit never unpickles): {exc!r}"[:300]
        if self.refusal is not None:  # RQ reads func_name before func: give it a name, never the data's
            self._func_name, self._instance, self._args, self._kwargs = "refused", None, (), {}
        foreign = [f"{what} {name!r}" for what, name in (("success callback", self._success_callback_name),
                                                         ("failure callback", self._failure_callback_name),
                                                         ("stopped callback", self._stopped_callback_name)) if name]
        if getattr(self, "webhooks", None):
            foreign.append("webhooks")
        if foreign:  # never imported, never called: the job fails with the reason instead
            self.refusal = f"job names {', '.join(foreign)}: refused"
            self._success_callback_name = self._failure_callback_name = self._stopped_callback_name = None
            self.webhooks = []

    @property
    def func(self):
        if self.refusal:
            raise MalformedMessage(self.refusal)
        self.retries_left = 0  # a frame that is not the kit's is never retried (set back below when it is)
        name = self.func_name
        if self.instance is not None or name not in FUNCTIONS:
            raise MalformedMessage(f"not a kit job: function {name!r}")
        self.retries_left = self._retries_left_read
        return FUNCTIONS[name]


def retry_for(options: StackOptions) -> Retry | None:
    """``max_retries`` retries, waiting ``backoff_ms * 2**n`` (RQ's scheduler moves them back, ~1 s ticks)."""
    if options.max_retries < 1:
        return None  # RQ's Retry refuses max=0
    # [semantics:retries] RQ's Retry: retry n waits intervals[n] seconds in the scheduled registry
    return Retry(max=options.max_retries, interval=[options.backoff_ms / 1000 * 2**n for n in range(options.max_retries)])


def enqueue(connection, service: str, args: tuple, options: StackOptions) -> Job:
    """One job for ``service``'s queue; returns once Redis stored it (RQ's enqueue is one MULTI/EXEC)."""
    queue = Queue(service, connection=connection, serializer=SERIALIZER, job_class=KitJob)
    return queue.enqueue(STEPS[service], *args, retry=retry_for(options), job_timeout=JOB_TIMEOUT_S,
                         result_ttl=RESULT_TTL_S)


def _process(service: str, arg: Any, upstream: Any = None) -> dict:
    job = get_current_job()
    try:
        if not isinstance(arg, str):  # JSON let the producer send any type; only a string is an envelope
            raise MalformedMessage(f"job argument is {type(arg).__name__}, not an encoded envelope")
        if upstream is not None and not isinstance(upstream, dict):
            raise MalformedMessage(f"previous step's result is {type(upstream).__name__}, not an object")
        me = this_worker("rq")
        # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger
        # transaction: a job run again (retried, or abandoned by a killed worker) has no second effect
        outcome = process(arg.encode("utf-8", "surrogateescape"), service=service, worker=me.name, ledger=me.ledger,
                          guard=me.options.guard, upstream=upstream)
    except NEVER_RETRY:
        if job is not None:
            job.retries_left = 0  # [semantics:dead-letter] no retry: RQ moves it to the failed registry now
        raise
    following = next_service(service)
    if following is not None and job is not None:
        # the next step is stored before this job finishes: a crash in between runs this step again (guarded)
        enqueue(job.connection, following, (arg, outcome.result), me.options)
    return outcome.result


# [handler:signup]
def signup(envelope: str) -> dict:
    return _process("signup", envelope)


# [handler:video] each step enqueues the next with its result as the next one's second argument
def transcode(envelope: str) -> dict:
    return _process("video.transcode", envelope)


# [handler:video]
def thumbnail(envelope: str, upstream: dict) -> dict:
    return _process("video.thumbnail", envelope, upstream)


# [handler:video]
def notify(envelope: str, upstream: dict) -> dict:
    return _process("video.notify", envelope, upstream)


# [handler:tracking] no fan-out in RQ: one queue per subscriber, one job each
def analytics(envelope: str) -> dict:
    return _process("tracking.analytics", envelope)


# [handler:tracking]
def recommendations(envelope: str) -> dict:
    return _process("tracking.recommendations", envelope)


STEPS: dict[str, Callable[..., Any]] = {
    "signup": signup, "video.transcode": transcode, "video.thumbnail": thumbnail, "video.notify": notify,
    "tracking.analytics": analytics, "tracking.recommendations": recommendations}
FUNCTIONS = {f"{__name__}.{f.__name__}": f for f in STEPS.values()}  # the only names a job may call
