"""Pub/Sub: one event, two subscribing services; each must see every event."""
from __future__ import annotations

from queuekit.core.envelope import make_envelope
from queuekit.suite.model import Context, Scenario, always, by_capability
from workloads import WORKLOADS

from .observe import delivery, wait_for_effects

N = 40


def run(ctx: Context) -> dict:
    spec = WORKLOADS["tracking"]
    envelopes = [make_envelope(m) for m in spec.make_messages(N, seed=21)]
    report = ctx.stack.publish("tracking", envelopes)
    # counted from the broker's confirms: how many messages it accepted for one event
    observed: dict = {"broker_messages_per_event": report.messages_per_envelope}
    for service in spec.services:
        wait_for_effects(ctx, service, [e.key for e in envelopes])
    ctx.stack.drain("tracking")
    for service in spec.services:
        short = service.split(".")[1]
        seen = delivery(ctx, envelopes, service)
        observed[f"{short}_missing"] = seen["lost"]
        observed[f"{short}_duplicates"] = seen["duplicates"]
    return observed


SCENARIO = Scenario(
    name="fan-out",
    concept="Pub/Sub: one event, many subscribers",
    question=f"{N} tracking events, two services (analytics, recommendations): does each service see every event, "
             "and how many broker messages does one event cost?",
    workload="tracking",
    expect=[
        always(analytics_missing=0, recommendations_missing=0, analytics_duplicates=0, recommendations_duplicates=0),
        # the broker copies (fanout exchange) or every subscriber reads one log: one message per event;
        # otherwise the producer sends one per subscribing service
        by_capability("native_fanout", yes={"broker_messages_per_event": 1},
                      no={"broker_messages_per_event": len(WORKLOADS["tracking"].services)}),
    ],
    kinds={**{f"{s.split('.')[1]}_missing": "loss" for s in WORKLOADS["tracking"].services},
           **{f"{s.split('.')[1]}_duplicates": "duplicate" for s in WORKLOADS["tracking"].services}},
    run=run,
)
