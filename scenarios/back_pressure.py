"""Back-pressure: a slow consumer. What bounds the work in flight, and who slows down?"""
from __future__ import annotations

import logging
import threading

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Anything, AtLeast, AtMost, Context, Scenario, always, by_capability, for_stack
from workloads import WORKLOADS

from .observe import delivery

log = logging.getLogger(__name__)

N = 60
PREFETCH = 2
MAX_LENGTH = 10
SLOW_S = 0.03  # per task
HEAD_S = 2.0  # the first task holds the one worker this long: time enough to fill the queue on any machine
SAMPLE_EVERY_S = 0.1


class Sampler(threading.Thread):
    """Highest in-flight per consumer, backlog and worker memory, polled beside the publisher.

    A thread of its own, so the publisher publishes back to back: sampling between publishes (several
    management API reads) would slow the publisher down to the consumer's pace and the queue never fills."""

    def __init__(self, ctx: Context):
        super().__init__(daemon=True, name="back-pressure-sampler")
        self.ctx, self.in_flight, self.backlog, self.rss = ctx, 0, 0, 0
        self.done = threading.Event()

    def sample(self) -> None:
        self.in_flight = max(self.in_flight, *self.ctx.stack.in_flight().values(), 0)
        self.backlog = max(self.backlog, self.ctx.stack.backlog("signup"))
        self.rss = max(self.rss, *self.ctx.stack.worker_rss_bytes(), 0)

    def run(self) -> None:
        while not self.done.wait(SAMPLE_EVERY_S):  # a paced poll, ended by stop(): not a readiness wait
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001 - one failed read (a worker gone mid-listing) must not end sampling
                log.warning("back-pressure sample failed, sampling on: %r", exc)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.sample()


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m, {"fault": "slow", "seconds": HEAD_S if i == 0 else SLOW_S})
                 for i, m in enumerate(WORKLOADS["signup"].make_messages(N, seed=81))]
    sample, refused = Sampler(ctx), 0
    sample.start()
    try:
        for env in envelopes:
            # A publisher with confirms learns of a full queue from the nack and slows down:
            # it offers the message again once the backlog has room. Nothing is dropped.
            while ctx.stack.publish("signup", [env]).refused:
                refused += 1
                wait_for(lambda: ctx.stack.backlog("signup") < MAX_LENGTH, timeout=60,
                         what="room in the length-limited queue")
        wait_for(lambda: len(ctx.ledger.effects(service="signup")) >= N, timeout=90, what=f"{N} slow tasks done")
    finally:
        sample.stop()
    ctx.stack.drain("signup")
    seen = delivery(ctx, envelopes, "signup")
    return {
        "lost": seen["lost"],
        "effects": seen["effects"],
        "publisher_refused": refused,
        "max_in_flight_per_consumer": sample.in_flight,
        "max_backlog": sample.backlog,
        "worker_rss_mb": round(sample.rss / 2**20),
    }


SCENARIO = Scenario(
    name="back-pressure",
    concept="Back-pressure: prefetch and bounded queues",
    question=f"{N} slow tasks (the first {HEAD_S:g} s), one worker, prefetch {PREFETCH}, queue limited to {MAX_LENGTH} "
             "(reject-publish): how much does a consumer hold, does the publisher get pushed back, is anything lost?",
    workload="signup",
    options=StackOptions(workers=1, prefetch=PREFETCH, queue_max_length=MAX_LENGTH),
    expect=[
        always(lost=0, effects=N, worker_rss_mb=AtMost(400)),
        by_capability(
            "pull_based",
            # Push-based: prefetch bounds what each consumer holds; the full queue nacks the publisher.
            no={"max_in_flight_per_consumer": AtMost(PREFETCH), "publisher_refused": AtLeast(1)},
            # Pull-based: nothing pushes back on the producer; the lag grows while consumer memory stays bounded.
            yes={"publisher_refused": 0, "max_backlog": AtLeast(MAX_LENGTH)},
        ),
        # Finding of kombu's confluentkafka transport: it flushes the producer after every record, so Celery
        # publishes one task at a time (tens of ms each here) and cannot outrun even this slow consumer.
        for_stack("celery_kafka", "kombu confluentkafka flushes every record: the producer is the bottleneck",
                  max_backlog=Anything()),
    ],
    kinds={"lost": "loss", "publisher_refused": "refused"},
    run=run,
)
