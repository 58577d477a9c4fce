"""At-least-once vs at-most-once: SIGKILL a worker while it holds a message."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

from queuekit.suite.model import Context, Scenario, each, same
from .observe import attempts_in_progress, delivery, worker_of

N_QUICK = 10
SLOW_S = 3.0


def crash_mid_task(ctx: Context) -> dict:
    slow_msg, *quick_msgs = WORKLOADS["signup"].make_messages(N_QUICK + 1, seed=71)
    slow = make_envelope(slow_msg, {"fault": "slow", "seconds": SLOW_S})
    quick = [make_envelope(m) for m in quick_msgs]
    ctx.stack.publish("signup", [slow])
    # Wait until a worker is inside the slow task, then kill exactly that worker.
    [holder] = wait_for(lambda: attempts_in_progress(ctx, "signup", slow.key), timeout=30,
                        what="a worker to start the slow task")
    killed_pid = ctx.stack.kill_worker(worker_of(holder.worker))
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
    expect=same(lost=0, duplicates=0, slow_task_redelivered=True, quick_effects=N_QUICK),
    run=crash_mid_task,
)

EARLY_ACK = Scenario(
    name="crash-mid-task-early-ack",
    concept="At-most-once delivery: ack on receipt (Celery's default)",
    question="The same SIGKILL with the ack sent when the message is received: what happens to the task?",
    workload="signup",
    options=StackOptions(workers=2, early_ack=True),
    expect=each(
        {"duplicates": 0, "quick_effects": N_QUICK},
        celery={"lost": 1, "slow_task_redelivered": False},  # acked before it ran: gone with the worker
        dramatiq={"lost": 0, "slow_task_redelivered": True},  # Dramatiq always acks after the actor
        kafka={"lost": 1, "slow_task_redelivered": False},  # offset stored before processing: skipped
    ),
    run=crash_mid_task,
)
