"""Every workload on every stack, on the real brokers: N in, N effects out, poison to the DLQ."""
from __future__ import annotations

import pytest

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

N = 40
MALFORMED = (b'{"schema": "signup.requested", "version": 1, "id": "bad-1", "sent_at": 0, "headers": {}, '
             b'"body": {"user_id": "not-an-int", "email": "x@example.org", "idempotency_key": "bad-1"}}')


def effects_per_service(ledger, spec) -> dict[str, int]:
    return {service: len(ledger.effects(service=service)) for service in spec.services}


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_every_message_has_exactly_one_effect_per_service(stack, ledger, workload):
    spec = WORKLOADS[workload]
    stack.start([workload], StackOptions(workers=2, concurrency=1, prefetch=1))
    envelopes = [make_envelope(m) for m in spec.make_messages(N, seed=7)]

    report = stack.publish(workload, envelopes)
    assert report.confirmed == N and report.refused == 0

    wait_for(lambda: all(n >= N for n in effects_per_service(ledger, spec).values()), timeout=90,
             what=f"{N} effects for each of {spec.services}",
             describe=lambda: str(effects_per_service(ledger, spec)))
    stack.drain(workload, timeout=60)

    keys = sorted(e.key for e in envelopes)
    for service in spec.services:
        assert sorted(e.key for e in ledger.effects(service=service)) == keys, service
        assert ledger.duplicates(service) == {}
    assert stack.backlog(workload) == 0


@pytest.mark.parametrize("workload", ["signup"])
def test_malformed_message_is_dead_lettered_with_reason_and_the_rest_succeed(stack, ledger, workload):
    spec = WORKLOADS[workload]
    stack.start([workload], StackOptions(workers=1))
    good = [make_envelope(m) for m in spec.make_messages(10, seed=3)]
    stack.publish(workload, good[:5])
    stack.publish_raw(workload, MALFORMED)
    stack.publish(workload, good[5:])

    wait_for(lambda: len(stack.dead_letters(workload)) >= 1, timeout=60, what="the malformed message in the DLQ")
    wait_for(lambda: len(ledger.effects(service="signup")) >= 10, timeout=60, what="the 10 good messages' effects")
    stack.drain(workload, timeout=60)

    [dead] = stack.dead_letters(workload)
    assert dead.payload == MALFORMED  # nothing lost: the original bytes are kept
    assert "user_id" in dead.reason and "int" in dead.reason  # and the reason says what is wrong
    assert len(ledger.effects(service="signup")) == 10


def test_video_pipeline_steps_happen_in_order_per_video(stack, ledger):
    spec = WORKLOADS["video"]
    stack.start(["video"], StackOptions(workers=2))
    envelopes = [make_envelope(m) for m in spec.make_messages(12, seed=5)]
    stack.publish("video", envelopes)
    wait_for(lambda: len(ledger.effects(service="video.notify")) >= 12, timeout=90, what="12 notify effects")

    by_step = {s: {e.key: e for e in ledger.effects(service=s)} for s in spec.services}
    for env in envelopes:
        steps = [by_step[s][env.key] for s in spec.services]
        for earlier, later in zip(steps, steps[1:]):
            assert earlier.finished_at <= later.started_at, (env.key, earlier.service, later.service)
