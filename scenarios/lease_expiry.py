"""Leases: a task that outlives what the broker allows a consumer to hold a message."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import AtLeast, Context, Scenario, always, by_capability, for_stack
from workloads import WORKLOADS

from .observe import key_of

TASK_S = 5.0
RECORD_LOCK_MS = 2000  # share groups: share.record.lock.duration.ms (the kit's broker allows >= 1 s)
POLL_INTERVAL_MS = 3000  # consumer groups: max.poll.interval.ms
N_QUICK = 4
GIVE_UP_AFTER_ATTEMPTS = 5  # a task taken away this often will not settle: stop watching


def run(ctx: Context) -> dict:
    long_msg, *quick_msgs = WORKLOADS["signup"].make_messages(N_QUICK + 1, seed=151)
    long_one = make_envelope(long_msg, {"fault": "slow", "seconds": TASK_S})
    quick = [make_envelope(m) for m in quick_msgs]
    ctx.stack.publish("signup", [long_one, *quick])
    attempts = lambda: len(ctx.ledger.attempts_for("signup", long_one.key))  # noqa: E731
    # Either everything settles (done, or given up by the broker), or the task keeps being taken away.
    wait_for(lambda: attempts() >= GIVE_UP_AFTER_ATTEMPTS
             or (attempts() and all(a.finished_at for a in ctx.ledger.attempts_for("signup", long_one.key))
                 and ctx.stack.backlog("signup") == 0),
             timeout=120, what="the long task settled, or taken away repeatedly",
             describe=lambda: f"long task attempted {attempts()} times, backlog {ctx.stack.backlog('signup')}")
    effects = ctx.ledger.effects(service="signup")
    return {
        "long_task_attempts": attempts(),
        "long_task_effects": sum(1 for e in effects if e.key == long_one.key),
        "duplicate_effects": len(ctx.ledger.duplicates("signup")),
        "long_task_dead_lettered": any(key_of(d.payload) == long_one.key for d in ctx.stack.dead_letters("signup")),
        "quick_effects": sum(1 for e in effects if e.key != long_one.key),
    }


SCENARIO = Scenario(
    name="lease-expiry",
    concept="Leases: record locks, max.poll.interval.ms, consumer_timeout",
    question=f"A {TASK_S:g} s task with a {RECORD_LOCK_MS} ms record lock (share groups) or visibility timeout "
             f"(Celery on Redis) or a {POLL_INTERVAL_MS} ms "
             "max.poll.interval.ms (consumer groups): how often does it run, how many effects, where does it end?",
    workload="signup",
    # record_lock_ms: the per-message lease, read by share groups (share.record.lock.duration.ms) and celery_redis
    # (kombu's visibility_timeout); the others ignore it.
    options=StackOptions(workers=2, partitions=2, max_retries=3, record_lock_ms=RECORD_LOCK_MS),
    options_when={"evicts_slow_consumer": {"max_poll_interval_ms": POLL_INTERVAL_MS, "session_timeout_ms": 2000}},
    expect=[
        always(duplicate_effects=0, long_task_effects=1),
        by_capability(
            "lease",
            # RabbitMQ: consumer_timeout is broker-wide (30 min on the kit's broker): the task is just long.
            none={"long_task_attempts": 1, "long_task_dead_lettered": False, "quick_effects": N_QUICK},
            # Consumer groups: the member is evicted, the record handled again by the next owner, who is evicted
            # in turn; the guard keeps one effect.
            member={"long_task_attempts": AtLeast(3)},
            # Share groups: the lock expires mid-task and the record goes to another member while the first
            # still runs it; the first's ACCEPT is refused. Every delivery outlives its lock, so the delivery
            # count limit (max_retries + 1 = 4) archives it into the DLQ although its first run succeeded.
            record={"long_task_attempts": AtLeast(2), "long_task_dead_lettered": True, "quick_effects": N_QUICK},
        ),
        # Celery on Redis's own finding (celery #2599, #5935): kombu restores an unacked message past its visibility
        # timeout without counting the delivery (no delivery count on Redis), so the task runs again each cycle
        # and never dead-letters; the first run's ack then clears the rerun's unacked entry (tests/stacks/).
        for_stack("celery_redis", "kombu's visibility timeout re-runs the task uncounted: never dead-lettered",
                  long_task_dead_lettered=False),
        # No competing consumers (a 3.10 stream): both workers read the long task, so it runs once per worker.
        by_capability("competing_consumers", no={"long_task_attempts": 2}),
    ],
    kinds={"long_task_attempts": "retry", "duplicate_effects": "duplicate"},  # > 1: taken back mid-task
    run=run,
)
