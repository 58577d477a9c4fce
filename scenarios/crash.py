"""At-least-once vs at-most-once: SIGKILL a worker while it holds a message."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Context, Scenario, always, by_capability
from workloads import WORKLOADS

from .observe import DELIVERY_KINDS, delivery

N_QUICK = 10
SLOW_S = 3.0


def crash_mid_task(ctx: Context) -> dict:
    slow_msg, *quick_msgs = WORKLOADS["signup"].make_messages(N_QUICK + 1, seed=71)
    slow = make_envelope(slow_msg, {"fault": "slow", "seconds": SLOW_S})
    quick = [make_envelope(m) for m in quick_msgs]
    ctx.stack.publish("signup", [slow])
    # Wait until a worker is inside the slow task, then kill exactly that worker.
    killed_pid = ctx.stack.kill_worker_holding("signup", slow.key)
    ctx.stack.publish("signup", quick)
    ctx.stack.drain("signup", timeout=90)  # settles either way: redelivered and done, or gone
    seen = delivery(ctx, [slow, *quick], "signup")
    return {
        "lost": seen["lost"],
        "duplicates": seen["duplicates"],
        "slow_task_redelivered": len(ctx.ledger.attempts_for("signup", slow.key)) > 1,
        "quick_effects": sum(1 for e in ctx.ledger.effects(service="signup") if e.key != slow.key),
        "killed_pid": killed_pid,
    }


SCENARIO = Scenario(
    name="crash-mid-task",
    concept="At-least-once delivery: ack after the work",
    question="SIGKILL the worker in the middle of a task, with acks after the handler (the kit's setting): "
             "is the task redelivered, lost, or duplicated?",
    workload="signup",
    options=StackOptions(workers=2, early_ack=False),
    expect=[always(lost=0, duplicates=0, slow_task_redelivered=True, quick_effects=N_QUICK)],
    kinds=DELIVERY_KINDS,
    run=crash_mid_task,
)

EARLY_ACK = Scenario(
    name="crash-mid-task-early-ack",
    concept="At-most-once delivery: ack on receipt (Celery's default)",
    question="The same SIGKILL with the ack sent when the message is received: what happens to the task?",
    workload="signup",
    options=StackOptions(workers=2, early_ack=True),
    expect=[
        always(duplicates=0, quick_effects=N_QUICK),
        by_capability(
            "ack_on_receipt_possible",
            # acked (or its offset stored) before it ran: gone with the worker
            yes={"lost": 1, "slow_task_redelivered": False},
            # no such mode (Dramatiq always acks after the actor): the option is ignored, nothing is lost
            no={"lost": 0, "slow_task_redelivered": True},
        ),
        # Without competing consumers (a 3.10 stream) the other worker read the same message with its own
        # offset and handles it: the killed reader's at-most-once loss is covered by a second reader.
        by_capability("competing_consumers", no={"lost": 0, "slow_task_redelivered": True}),
    ],
    kinds=DELIVERY_KINDS,
    run=crash_mid_task,
)


# -- the same SIGKILL with several messages fetched ahead (prefetch > 1) ------------------------------------
N_PREFETCHED = 8
PREFETCH = 4
TASK_S = 1.0


def crash_with_prefetch(ctx: Context) -> dict:
    envelopes = [make_envelope(m, {"fault": "slow", "seconds": TASK_S})
                 for m in WORKLOADS["signup"].make_messages(N_PREFETCHED, seed=72)]
    ctx.stack.publish("signup", envelopes)

    def second_task_running() -> bool:  # one acked (and its ack sent), the next one inside its handler
        done = ctx.ledger.effects(service="signup")
        return bool(done) and any(a.finished_at is None for a in ctx.ledger.attempts(service="signup"))

    wait_for(second_task_running, timeout=60, what="one task done and the next one running")
    ctx.stack.kill_worker(0)  # SIGKILL with the rest of its prefetch fetched but not done
    ctx.stack.add_worker()  # a supervisor restarts it
    ctx.stack.drain("signup", timeout=120)
    seen = delivery(ctx, envelopes, "signup")
    return {"lost": seen["lost"], "duplicates": seen["duplicates"], "effects": seen["effects"]}


PREFETCHED = Scenario(
    name="crash-mid-task-prefetch",
    concept="At-least-once delivery: what an ack covers",
    question=f"{N_PREFETCHED} one-second tasks, one worker with prefetch {PREFETCH}: SIGKILL it after the first "
             "task is acked, while the next runs. Are the fetched-but-unfinished tasks redelivered or lost?",
    workload="signup",
    options=StackOptions(workers=1, prefetch=PREFETCH, early_ack=False),
    expect=[
        # Stock kombu's confluentkafka transport loses here (its ack commits the consumer's whole position, past
        # the prefetched records): celery_kafka runs the kit's transport, whose ack commits only up to the first
        # record not yet acked (celery_app/kafka_transport.py; the stock loss: tests/stacks/test_celery_kafka.py).
        always(lost=0, duplicates=0, effects=N_PREFETCHED),
    ],
    kinds=DELIVERY_KINDS,
    run=crash_with_prefetch,
)
