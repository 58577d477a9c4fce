"""``queuekit run``: N messages of one workload through one stack, watched until settled."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from queuekit.core.config import Settings, private_dir
from queuekit.core.envelope import make_envelope
from queuekit.core.errors import KitError, WaitTimeout
from queuekit.core.ledger import Ledger
from queuekit.core.options import QueueType, StackOptions
from queuekit.stacks.registry import load_stack
from workloads import WORKLOADS

MALFORMED = b'{"schema": "%s", "version": 1, "id": "malformed-%d", "sent_at": 0, "headers": {}, "body": {}}'


@dataclass(frozen=True)
class RunSummary:
    stack: str
    workload: str
    published: int
    malformed: int
    effects: dict[str, int]
    duplicates: dict[str, int]
    dead_letters: int
    dead_letter_reasons: list[str]
    seconds: float  # publish start -> every service has every effect
    settle_seconds: float  # publish start -> the broker's own view shows nothing left (drain)
    publish_seconds: float

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


def quick_run(settings: Settings, stack_name: str, workload: str, n: int, workers: int, malformed: int,
              timeout: float, progress: Progress | None = None, queue_type: QueueType | None = None,
              say: Callable[[str], None] = lambda _: None) -> RunSummary:
    """``queue_type`` (RabbitMQ stacks): "classic" or "quorum"; None keeps the stack's own (celery_quorum: quorum).
    The reset before the run deletes only ``workload``'s objects (its queues / topics / groups / keys and its dead
    letters, made by hand included); ``say`` gets one line per kind deleted, names and count."""
    spec = WORKLOADS[workload]
    runs = private_dir(settings.home / "runs")  # ledgers: owner only
    ledger = Ledger(runs / f"{stack_name}-{workload}-{int(time.time())}.db")
    stack_cls = load_stack(stack_name)
    if queue_type not in (None, "classic") and stack_cls.capabilities.broker != "rabbitmq":
        raise KitError(f"{stack_name} runs on {stack_cls.capabilities.broker}: it has no {queue_type} queues",
                       "use --queue-type only with a RabbitMQ stack (celery, dramatiq)")
    stack = stack_cls(settings, ledger.path)
    envelopes = [make_envelope(m) for m in spec.make_messages(n, seed=int(time.time()))]  # before timing
    stack.reset([workload], say)  # this workload's objects only: another workload's dead letters stay
    options = StackOptions(workers=workers) if queue_type is None else StackOptions(workers=workers, queue_type=queue_type)
    try:
        stack.start([workload], options)
    except Exception as exc:
        if "PRECONDITION_FAILED" not in str(exc):
            raise
        # classic <-> quorum: an object every workload shares (Celery's celery.tasks) exists with the other type
        # and RabbitMQ refuses to redeclare it (406); only a reset of every workload deletes it
        say(f"{stack_name}/{workload}: {stack_name}'s shared objects exist with another queue type: resetting "
            f"every workload")
        stack.reset(say=say)
        stack.start([workload], options)
    try:
        t0 = time.monotonic()
        report = stack.publish(workload, envelopes)
        for i in range(malformed):
            stack.publish_raw(workload, MALFORMED % (spec.message_type.schema.encode(), i))
        publish_seconds = time.monotonic() - t0
        _watch(ledger, spec.services, n, timeout, progress)
        seconds = time.monotonic() - t0
        stack.drain(workload, timeout=timeout)  # retries, dead letters and acks have settled too
        dead = stack.dead_letters(workload)
        return RunSummary(
            stack=stack_name, workload=workload, published=report.confirmed, malformed=malformed,
            effects={s: len(ledger.effects(service=s)) for s in spec.services},
            duplicates={s: sum(n - 1 for n in ledger.duplicates(s).values()) for s in spec.services},
            dead_letters=len(dead), dead_letter_reasons=sorted({d.reason[:80] for d in dead}),
            seconds=seconds, settle_seconds=time.monotonic() - t0, publish_seconds=publish_seconds,
        )
    finally:
        stack.stop()


def _watch(ledger: Ledger, services: tuple[str, ...], n: int, timeout: float, progress: Progress | None) -> None:
    """Show effects per service as they land; poll until every service has n (or the deadline passes)."""
    progress = progress or Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), transient=False)
    deadline = time.monotonic() + timeout
    with progress:
        tasks = {s: progress.add_task(s, total=n) for s in services}
        while True:
            counts = ledger.effect_counts()
            for service, task in tasks.items():
                progress.update(task, completed=min(counts.get(service, 0), n))
            if all(counts.get(s, 0) >= n for s in services):
                return
            if time.monotonic() > deadline:
                raise WaitTimeout(f"timed out after {timeout:.0f}s: effects so far {counts}, wanted {n} per service")
            time.sleep(0.2)  # the refresh interval of the progress display
