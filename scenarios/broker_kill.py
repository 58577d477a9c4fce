"""Durability under a crash: SIGKILL the broker process mid-stream (not the graceful restart of broker_restart.py).

What a process kill keeps, per broker the kit runs (a kill, not a power cut: the machine stays up, so whatever
the broker had handed to the kernel — the page cache — survives even where it was never fsynced):

* RabbitMQ (3.10 and 4.x): durable queues, persistent messages, publisher confirms. A classic queue confirms a
  persistent message once it is written to its store; a quorum queue or a stream once its log has it. Nothing
  confirmed may be lost. Unacked deliveries go back to the queue when the node comes back.
* Kafka (one node, acks=all): the leader is the only replica, and Kafka never fsyncs per write
  (``log.flush.interval.messages`` unset): an acknowledged record is in the page cache, which a process kill
  does not lose. The log is recovered on start (no clean-shutdown marker). Nothing confirmed may be lost;
  uncommitted offsets are re-read.
* Redis (AOF, ``appendfsync everysec``): Redis write()s its AOF buffer before it sends the replies of that
  event-loop turn and fsyncs once a second; a process kill keeps what was written. Nothing confirmed may be lost.

So the expectation is the same on every broker (``always``), stated and then observed: a stack whose framework
loses what its broker kept shows it here. One broker kill per cell (the expensive part).
"""
from __future__ import annotations

import time

from queuekit.core.envelope import make_envelope
from queuekit.core.waiting import wait_for, wait_while_progressing
from queuekit.suite.model import Anything, AtMost, Context, Scenario, always, for_stack
from workloads import WORKLOADS

from .observe import delivery

N = 40
SLOW_S = 0.05


def run(ctx: Context) -> dict:
    envelopes = [make_envelope(m, {"fault": "slow", "seconds": SLOW_S})
                 for m in WORKLOADS["signup"].make_messages(N, seed=171)]
    first, second = envelopes[: N // 2], envelopes[N // 2:]
    done = lambda keys: {e.key for e in ctx.ledger.effects(service="signup")} & keys  # noqa: E731
    after = {e.key for e in second}
    confirmed = ctx.stack.publish("signup", first).confirmed
    wait_for(lambda: len(ctx.ledger.effects(service="signup")) >= 3, timeout=60, what="work under way")
    in_flight = {a.key for a in ctx.ledger.attempts(service="signup") if a.finished_at is None}  # started, unfinished
    killed_at = time.monotonic()
    ctx.stack.kill_broker()  # SIGKILL the broker's processes, wait for its ports to be free, start it again
    broker_back_s = time.monotonic() - killed_at
    confirmed += ctx.stack.publish("signup", second).confirmed  # clients reconnect by themselves
    # Working again = the first message published after the kill has its effect.
    wait_while_progressing(lambda: min(1, len(done(after))), 1, timeout=90, stall=90)
    recovered_s = time.monotonic() - killed_at
    # Every task done, or 45 s without a new one: a confirmed task that never runs is the finding ("lost").
    wait_while_progressing(lambda: len(done({e.key for e in envelopes})), N, timeout=120, stall=45)
    ctx.stack.drain("signup", timeout=60)
    seen = delivery(ctx, envelopes, "signup")
    attempts = ctx.ledger.attempts(service="signup")
    effects = {e.key for e in ctx.ledger.effects(service="signup")}
    return {
        "confirmed": confirmed,
        "lost": seen["lost"],
        "duplicate_effects": seen["duplicates"],
        "redelivered": len(attempts) - N,  # attempts beyond one per message: work handed out again
        "in_flight_at_kill": len(in_flight),
        "in_flight_rerun": sum(1 for k in in_flight if sum(a.key == k for a in attempts) > 1),
        "in_flight_lost": len(in_flight - effects),
        "broker_back_s": round(broker_back_s, 1),  # kill + ports free + start until the broker answers
        "recovered_s": round(recovered_s, 1) if done(after) else None,  # until work flows again
    }


SCENARIO = Scenario(
    name="broker-kill",
    concept="Durability: what a broker crash keeps (page cache, fsync, confirms)",
    question=f"{N} tasks, the broker SIGKILLed after a few and started again: is any confirmed message lost, what "
             "happens to the work in flight, and how long until the stack works again?",
    workload="signup",
    expect=[
        always(confirmed=N, lost=0, duplicate_effects=0, in_flight_lost=0, redelivered=Anything(),
               in_flight_at_kill=Anything(), in_flight_rerun=Anything(), broker_back_s=Anything(),
               recovered_s=AtMost(90)),
        # One framework's finding (as in broker-restart): Celery over kombu's confluentkafka transport lost one
        # confirmed task across a Kafka restart in some runs, mechanism not found (docs/findings.md). At most one.
        for_stack("celery_kafka", "kombu's Kafka transport: one confirmed task lost across a broker restart in some runs",
                  lost=AtMost(1)),
    ],
    kinds={"lost": "loss", "in_flight_lost": "loss", "duplicate_effects": "duplicate"},  # re-runs: info
    run=run,
    needs_kit_brokers=True,
)
