"""Exactly-once: a crash between doing the work and acknowledging it."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.suite.model import AtLeast, Context, Scenario, always
from workloads import WORKLOADS

from .observe import wait_for_effects

N = 6


def run(ctx: Context) -> dict:
    # Kafka (transactional) dies after producing the step's output, before committing the
    # transaction; RabbitMQ stacks die after the effect is committed, before the ack.
    crash_at = ctx.options.crash_at
    victim_msg, *msgs = WORKLOADS["video"].make_messages(N, seed=131)
    victim = make_envelope(victim_msg, {"fault": "crash", "at": crash_at, "service": "video.transcode"})
    others = [make_envelope(m) for m in msgs]
    ctx.stack.publish("video", [victim, *others])
    wait_for_effects(ctx, "video.notify", [e.key for e in (victim, *others)], timeout=120)
    ctx.stack.drain("video", timeout=60)
    # How often the next step handled each input's output to the end (outcome ok, or duplicate: the guard
    # skipped a repeat). Not counted: an attempt with no outcome, cut short when the crash took down the whole
    # worker process, other services' threads in it too (its input comes again: at-least-once, one output),
    # and an attempt that failed and was retried. A second output of one input is a second completed attempt.
    # (Seen in CI, counting every attempt: redis_streams 2, a thumbnail in hand in the crashed process.)
    per_key: dict[str, int] = {}
    for a in ctx.ledger.attempts(service="video.thumbnail"):
        if a.outcome in ("ok", "duplicate"):
            per_key[a.key] = per_key.get(a.key, 0) + 1
    return {
        "transcode_runs_of_victim": len(ctx.ledger.attempts_for("video.transcode", victim.key)),
        "duplicate_effects": sum(len(ctx.ledger.duplicates(s)) for s in WORKLOADS["video"].services),
        "outputs_delivered_per_input": max(per_key.values()),
    }


SCENARIO = Scenario(
    name="exactly-once",
    concept="Exactly-once vs at-least-once",
    question="The transcode step crashes after doing its work but before acknowledging it: is the work "
             "repeated, and does the next step see the output once?",
    workload="video",
    options=StackOptions(workers=2, partitions=2),
    # Where the broker has transactions, use them: outputs and the input's offset commit together.
    options_when={"transactions": {"transactional": True, "crash_at": "after-output"}},
    expect=[always(duplicate_effects=0, transcode_runs_of_victim=AtLeast(2), outputs_delivered_per_input=1)],
    kinds={"duplicate_effects": "duplicate"},  # the victim's re-run is the designed part: info
    run=run,
)
