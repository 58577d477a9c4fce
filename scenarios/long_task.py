"""Long tasks: a video step that takes longer than Kafka's max.poll.interval.ms."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import AtLeast, AtMost, Context, Scenario, always, by_capability
from workloads import WORKLOADS

LONG_S = 6.0
POLL_INTERVAL_MS = 3000  # Kafka: a member that does not poll for this long is thrown out of the group
KAFKA = {"max_poll_interval_ms": POLL_INTERVAL_MS, "session_timeout_ms": 2000}
WORKERS = 2
GIVE_UP_AFTER_ATTEMPTS = 3  # a task handed around this often will not finish: stop watching


def run(ctx: Context) -> dict:
    long_msg, *short_msgs = WORKLOADS["video"].make_messages(4, seed=121)
    long_one = make_envelope(long_msg, {"fault": "slow", "seconds": LONG_S, "service": "video.transcode"})
    everything = [long_one, *(make_envelope(m) for m in short_msgs)]
    ctx.stack.publish("video", everything)
    attempts = lambda: len(ctx.ledger.attempts_for("video.transcode", long_one.key))  # noqa: E731
    done = lambda: len({e.key for e in ctx.ledger.effects(service="video.notify")})  # noqa: E731
    # Either every video finishes, or the long one keeps being taken away and restarted.
    wait_for(lambda: done() == len(everything) or attempts() >= GIVE_UP_AFTER_ATTEMPTS, timeout=120,
             what="all videos done, or the long task restarted repeatedly",
             describe=lambda: f"{done()} videos done, long task attempted {attempts()} times")
    finished = done() == len(everything)
    if finished:
        ctx.stack.drain("video", timeout=60)
    return {
        "long_task_attempts": attempts(),
        "long_task_finished": any(e.key == long_one.key for e in ctx.ledger.effects(service="video.notify")),
        "duplicate_effects": len(ctx.ledger.duplicates("video.transcode")),
        "videos_done": done(),
    }


FINISHES_ONCE = {"long_task_attempts": 1, "long_task_finished": True, "videos_done": 4}


def _scenario(name: str, mode: str, evicted: dict) -> Scenario:
    return Scenario(
        name=name,
        concept="Long tasks: consumer liveness (max.poll.interval.ms / consumer_timeout)",
        question=f"A {LONG_S:g} s transcode with Kafka's max.poll.interval.ms at {POLL_INTERVAL_MS} ms "
                 f"({mode}): is the task taken away from its consumer and started again elsewhere?",
        workload="video",
        options=StackOptions(workers=WORKERS, partitions=2),
        options_when={"evicts_slow_consumer": {**KAFKA, "long_task": mode}},
        # RabbitMQ only intervenes after consumer_timeout (30 min here): a long task is just long.
        expect=[always(duplicate_effects=0),
                by_capability("evicts_slow_consumer", yes=evicted, no=FINISHES_ONCE),
                # every worker reads the long video too (a 3.10 stream): one attempt per worker, not a redelivery
                by_capability("competing_consumers", no={"long_task_attempts": WORKERS})],
        kinds={"long_task_attempts": "retry", "duplicate_effects": "duplicate"},  # > 1: run again
        run=run,
    )


# Processing inside the poll loop: the member misses max.poll.interval.ms and is evicted. It still
# finishes the task (its output is produced), but its offset can no longer be stored, so the record
# starts again on the member that now owns the partition, which is evicted in turn: a livelock, and
# the videos queued behind it in that partition starve. (Observed; the guard keeps effects single.)
BLOCKING = _scenario("long-task", "block", {"long_task_attempts": AtLeast(GIVE_UP_AFTER_ATTEMPTS),
                                            "videos_done": AtMost(3)})
# The fix: pause the partition, work in a thread, keep polling, resume when done.
PAUSE_RESUME = _scenario("long-task-pause-resume", "pause-resume", FINISHES_ONCE)
