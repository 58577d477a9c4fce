"""Leases: a task that outlives what the broker allows a consumer to hold a message, its worker alive.

The question (issue 25): a task longer than the broker's lease while its worker stays alive — how many runs,
how many effects? One 5 s task among quick ones, two workers, the idempotency guard ON (so the effect count
shows what the guard saves, the run counts what the broker did). Observed: the long task's runs, split into
runs that started while its first run was still going (the lease taken away from a live worker: two runs at
once) and runs that started after the first had finished (handed out again later); its effects; whether it
ended dead-lettered.

How each stack's lease is chosen for the test: the lease must be shorter than ``TASK_S`` and as short as the
broker allows, so a cell takes seconds. It is the stack's own setting, passed as a ``StackOptions`` field the
stack reads (the capability ``lease`` says which kind it is, not how long):

* ``lease="record"``: ``record_lock_ms`` = ``RECORD_LOCK_MS``, the lease on one message — a share group's
  ``share.record.lock.duration.ms`` (the kit's broker allows >= 1 s); a Redis stack whose broker re-delivers
  a message held too long reads the same field (Celery on Redis: ``visibility_timeout``; Redis Streams: the
  XAUTOCLAIM min-idle-time);
* ``lease="member"``: ``max_poll_interval_ms`` = ``POLL_INTERVAL_MS`` (with a 2 s session), set only for
  stacks that declare ``evicts_slow_consumer``;
* ``lease="none"``: nothing to set — RabbitMQ's ``consumer_timeout`` is broker-wide (30 min on the kit's
  broker); Dramatiq on Redis requeues a worker's messages only once its heartbeat stops (a dead worker), and
  RQ's ``job_timeout`` kills the job in its own worker (one run, failed), neither while the worker lives.
"""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Anything, AtLeast, Context, Scenario, always, by_capability, for_stack
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
    first, *others = sorted(ctx.ledger.attempts_for("signup", long_one.key), key=lambda a: a.started_at)
    first_end = first.finished_at if first.finished_at is not None else float("inf")  # never finished: all overlap
    return {
        "long_task_attempts": attempts(),
        "runs_while_first_running": sum(1 for a in others if a.started_at < first_end),  # lease lost by a live worker
        "runs_after_first": sum(1 for a in others if a.started_at >= first_end),
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
            none={"long_task_attempts": 1, "runs_while_first_running": 0, "runs_after_first": 0,
                  "long_task_dead_lettered": False, "quick_effects": N_QUICK},
            # Consumer groups: the member is evicted, the record handled again by the next owner, who is evicted
            # in turn; the guard keeps one effect.
            # When the next owner starts it (before or after the first run ends) depends on eviction and
            # rebalance timing: recorded (seen: one run while the first still ran, the rest after).
            member={"long_task_attempts": AtLeast(3), "runs_while_first_running": Anything(),
                    "runs_after_first": Anything()},
            # Share groups: the lock expires mid-task, the record is delivered again and the first's ACCEPT is
            # refused. Every delivery outlives its lock, so the delivery count limit (max_retries + 1 = 4) archives
            # it into the DLQ although its first run succeeded. When the runs start is recorded, not asserted: on
            # the kit's share group (2026-12-05) each new delivery went to the member that had just finished the
            # previous run, never to the idle one (runs at 0, 5, 10, 15 s: none while the first still ran). A Redis
            # visibility timeout re-delivers while the first still runs (celery #2599): for lease="record" stacks
            # runs_while_first_running is the number to read.
            record={"long_task_attempts": AtLeast(2), "long_task_dead_lettered": True, "quick_effects": N_QUICK,
                    "runs_while_first_running": Anything(), "runs_after_first": Anything()},
        ),
        # Finding of Redis Streams: Redis takes an XACK from any consumer of the group, so the first holder's late
        # XACK settles the entry the claimer still runs; the delivery count never reaches the limit, nothing is
        # dead-lettered (tests/stacks/test_redis_streams.py shows the XACK).
        for_stack("redis_streams", "Redis accepts the lapsed holder's XACK: the claimed entry is settled, not "
                  "dead-lettered", long_task_dead_lettered=False),
        # Celery on Redis's own finding (celery #2599, #5935): kombu restores an unacked message past its visibility
        # timeout without counting the delivery (no delivery count on Redis), so the task runs again each cycle
        # and never dead-letters; the first run's ack then clears the rerun's unacked entry (tests/stacks/).
        for_stack("celery_redis", "kombu's visibility timeout re-runs the task uncounted: never dead-lettered",
                  long_task_dead_lettered=False),
        # No competing consumers (a 3.10 stream): both workers read the long task, so it runs once per worker.
        by_capability("competing_consumers", no={"long_task_attempts": 2, "runs_while_first_running": 1,
                                                 "runs_after_first": 0}),
    ],
    kinds={"long_task_attempts": "retry", "duplicate_effects": "duplicate"},  # > 1: taken back mid-task
    run=run,
)
