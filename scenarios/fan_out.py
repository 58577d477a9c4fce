"""Pub/Sub: one event, two subscribing services; each must see every event."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from workloads import WORKLOADS

from queuekit.suite.model import Context, Scenario, each
from .observe import delivery, wait_for_effects

N = 40


def run(ctx: Context) -> dict:
    spec = WORKLOADS["tracking"]
    envelopes = [make_envelope(m) for m in spec.make_messages(N, seed=21)]
    report = ctx.stack.publish("tracking", envelopes)
    observed: dict = {"broker_messages_per_event": report.copies}
    for service in spec.services:
        wait_for_effects(ctx, service, [e.key for e in envelopes])
    ctx.stack.drain("tracking")
    for service in spec.services:
        short = service.split(".")[1]
        seen = delivery(ctx, envelopes, service)
        observed[f"{short}_missing"] = seen["lost"]
        observed[f"{short}_duplicates"] = seen["duplicates"]
    observed["native_fanout"] = ctx.stack.native_fanout
    return observed


SCENARIO = Scenario(
    name="fan-out",
    concept="Pub/Sub: one event, many subscribers",
    question=f"{N} tracking events, two services (analytics, recommendations): does each service see every event, "
             "and how many broker messages does one event cost?",
    workload="tracking",
    expect=each(
        {"analytics_missing": 0, "recommendations_missing": 0,
         "analytics_duplicates": 0, "recommendations_duplicates": 0},
        celery={"broker_messages_per_event": 1, "native_fanout": True},  # fanout exchange copies it
        dramatiq={"broker_messages_per_event": 2, "native_fanout": False},  # the producer sends one per actor
        kafka={"broker_messages_per_event": 1, "native_fanout": True},  # one log, a group per service
    ),
    run=run,
)
