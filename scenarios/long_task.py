"""Long tasks: a video step that takes longer than Kafka's max.poll.interval.ms."""
from __future__ import annotations

from queuekit.envelope import make_envelope
from queuekit.stack import StackOptions
from workloads import WORKLOADS

from .base import AtLeast, Context, Scenario, each
from .observe import wait_for_effects

LONG_S = 6.0
POLL_INTERVAL_MS = 3000  # Kafka: a member that does not poll for this long is thrown out of the group
KAFKA = {"max_poll_interval_ms": POLL_INTERVAL_MS, "session_timeout_ms": 2000}


def run(ctx: Context) -> dict:
    long_msg, *short_msgs = WORKLOADS["video"].make_messages(4, seed=121)
    long_one = make_envelope(long_msg, {"fault": "slow", "seconds": LONG_S, "service": "video.transcode"})
    others = [make_envelope(m) for m in short_msgs]
    ctx.stack.publish("video", [long_one, *others])
    wait_for_effects(ctx, "video.notify", [e.key for e in (long_one, *others)], timeout=120)
    ctx.stack.drain("video", timeout=60)
    attempts = ctx.ledger.attempts_for("video.transcode", long_one.key)
    return {
        "long_task_attempts": len(attempts),
        "duplicate_effects": len(ctx.ledger.duplicates("video.transcode")),
        "videos_done": len(ctx.ledger.effects(service="video.notify")),
    }


def _scenario(name: str, mode: str, kafka_attempts) -> Scenario:
    return Scenario(
        name=name,
        concept="Long tasks: consumer liveness (max.poll.interval.ms / consumer_timeout)",
        question=f"A {LONG_S:g} s transcode with Kafka's max.poll.interval.ms at {POLL_INTERVAL_MS} ms "
                 f"({mode}): is the task handed to another consumer and done twice?",
        workload="video",
        options=StackOptions(workers=2, partitions=2),
        stack_options={"kafka": {"extra": {**KAFKA, "long_task": mode}}},
        # RabbitMQ only intervenes after consumer_timeout (30 min here): a long task is just long.
        expect=each({"duplicate_effects": 0, "videos_done": 4},
                    celery={"long_task_attempts": 1}, dramatiq={"long_task_attempts": 1},
                    kafka={"long_task_attempts": kafka_attempts}),
        run=run,
    )


# Processing inside the poll loop: the member misses max.poll.interval.ms, is evicted, its
# partition moves, the task runs again elsewhere (the guard keeps the effect single).
BLOCKING = _scenario("long-task", "processing in the poll loop", AtLeast(2))
# The fix: pause the partition, work in a thread, keep polling, resume when done.
PAUSE_RESUME = _scenario("long-task-pause-resume", "pause/resume while a thread works", 1)
