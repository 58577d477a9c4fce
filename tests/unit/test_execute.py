"""``process``: the one call adapters make. Attempts, faults, the guard, the pipeline."""
from __future__ import annotations

import time

import pytest

from queuekit.core.envelope import MalformedMessage, encode, make_envelope
from queuekit.core.execute import (
    HANDLERS,
    Outcome,
    PermanentError,
    TransientError,
    forward,
    handler_for,
    next_service,
    process,
)
from queuekit.core.ledger import Ledger
from queuekit.core.worker_env import FAULTS_ENV
from workloads import WORKLOADS
from workloads.messages import SignupRequested, TrackEvent, VideoUploaded

SIGNUP = SignupRequested(user_id=3, email="u3@example.test", idempotency_key="signup-3")
VIDEO = VideoUploaded(video_id=8, user_id=3, duration_s=0.05)


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


@pytest.fixture(autouse=True)
def harness_faults(monkeypatch):
    """As in a worker the harness started: fault directives honoured (the tests below turn it off)."""
    monkeypatch.setenv(FAULTS_ENV, "1")


def deliver(ledger: Ledger, msg, service: str, headers=None, **kw) -> Outcome:
    return process(encode(make_envelope(msg, headers)), service=service, worker="test-0", ledger=ledger, **kw)


def outcomes(ledger: Ledger, service: str, key: str) -> list[str | None]:
    return [a.outcome for a in ledger.attempts_for(service, key)]


def test_every_workload_service_has_a_handler():
    assert set(HANDLERS) == {s for spec in WORKLOADS.values() for s in spec.services}
    for spec in WORKLOADS.values():
        assert all(handler_for(s).schema == spec.message_type.schema for s in spec.services)
    with pytest.raises(ValueError, match="unknown service 'nope'"):
        handler_for("nope")


def test_signup_applies_once_and_a_redelivery_is_a_duplicate(ledger):
    data = encode(make_envelope(SIGNUP))
    first = process(data, service="signup", worker="w0", ledger=ledger)
    again = process(data, service="signup", worker="w1", ledger=ledger)
    assert (first.status, first.attempt) == ("applied", 1)
    assert (again.status, again.attempt) == ("duplicate", 2)
    assert again.result == first.result == {"recipient": "u3@example.test", "subject": "Welcome aboard, user 3!"}
    assert len(ledger.outbox_rows()) == 1 and ledger.count("effects") == 1
    assert outcomes(ledger, "signup", "signup-3") == ["ok", "duplicate"]


def test_guard_off_sends_the_email_twice(ledger):
    for _ in range(2):
        assert deliver(ledger, SIGNUP, "signup", guard=False).applied
    assert len(ledger.outbox_rows()) == 2
    assert ledger.duplicates("signup") == {"signup-3": 2}


def test_fail_times_raises_then_succeeds(ledger):
    data = encode(make_envelope(SIGNUP, {"fault": "fail-times", "n": 2}))
    for attempt in (1, 2):
        with pytest.raises(TransientError, match=f"injected failure {attempt}/2"):
            process(data, service="signup", worker="w0", ledger=ledger)
    outcome = process(data, service="signup", worker="w0", ledger=ledger)
    assert (outcome.applied, outcome.attempt) == (True, 3)
    assert outcomes(ledger, "signup", "signup-3") == ["error", "error", "ok"]
    assert ledger.attempts_for("signup", "signup-3")[0].error == "TransientError: injected failure 1/2"
    assert ledger.count("effects") == 1


def test_always_fail_never_applies(ledger):
    for _ in range(3):
        with pytest.raises(PermanentError):
            deliver(ledger, SIGNUP, "signup", {"fault": "always-fail"})
    assert ledger.count("effects") == ledger.count("outbox") == 0
    assert outcomes(ledger, "signup", "signup-3") == ["error"] * 3


def test_slow_takes_its_time(ledger):
    started = time.monotonic()
    deliver(ledger, SIGNUP, "signup", {"fault": "slow", "seconds": 0.05})
    assert time.monotonic() - started >= 0.05


def test_a_fault_can_target_one_service(ledger):
    headers = {"fault": "always-fail", "service": "tracking.recommendations"}
    event = TrackEvent(user_id=1, seq=0, kind="view", ts=0.0)
    assert deliver(ledger, event, "tracking.analytics", headers).applied
    with pytest.raises(PermanentError):
        deliver(ledger, event, "tracking.recommendations", headers)


def test_malformed_and_misrouted_messages_record_no_attempt(ledger):
    with pytest.raises(MalformedMessage, match="not JSON"):
        process(b"{", service="signup", worker="w0", ledger=ledger)
    with pytest.raises(MalformedMessage, match="schema 'video.uploaded' is not handled by 'signup'"):
        deliver(ledger, VIDEO, "signup")
    assert ledger.count("attempts") == 0


def test_video_pipeline_with_results_as_arguments(ledger):
    env = make_envelope(VIDEO)
    transcoded = process(encode(env), service="video.transcode", worker="w0", ledger=ledger)
    thumb = process(encode(env), service="video.thumbnail", worker="w0", ledger=ledger, upstream=transcoded.result)
    note = process(encode(env), service="video.notify", worker="w0", ledger=ledger, upstream=thumb.result)
    assert thumb.result["thumbnail"] in note.result["text"]
    assert ledger.effect_counts() == {"video.notify": 1, "video.thumbnail": 1, "video.transcode": 1}
    assert [next_service(s) for s in WORKLOADS["video"].services] == ["video.thumbnail", "video.notify", None]


def test_video_pipeline_forwarding_envelopes(ledger):
    env = make_envelope(VIDEO)
    for service in WORKLOADS["video"].services:
        outcome = process(encode(env), service=service, worker="w0", ledger=ledger)
        env = forward(env, outcome)
    assert "is ready" in outcome.result["text"]
    assert env.headers["upstream"] == outcome.result


def test_a_step_without_its_input_is_permanent(ledger):
    with pytest.raises(PermanentError, match="video.thumbnail needs the result of video.transcode"):
        deliver(ledger, VIDEO, "video.thumbnail")
    assert outcomes(ledger, "video.thumbnail", "video-8") == ["error"]


def test_a_handler_bug_is_recorded_and_propagates(ledger):
    with pytest.raises(KeyError):
        deliver(ledger, VIDEO, "video.thumbnail", upstream={"no": "digest"})
    (attempt,) = ledger.attempts_for("video.thumbnail", "video-8")
    assert attempt.outcome == "error" and attempt.error.startswith("KeyError")


def test_tracking_fan_out_and_order(ledger):
    events = WORKLOADS["tracking"].make_messages(40, seed=2, users=3)
    for service in WORKLOADS["tracking"].services:
        for event in events:
            deliver(ledger, event, service)
    assert ledger.effect_counts() == {"tracking.analytics": 40, "tracking.recommendations": 40}
    assert ledger.order_violations("tracking.recommendations") == 0
    (first,) = [e for e in ledger.effects(service="tracking.recommendations") if e.key == events[0].idempotency_key]
    assert (first.seq, first.user_id, first.worker) == (events[0].seq, events[0].user_id, "test-0")


def test_process_accepts_a_decoded_envelope(ledger):
    outcome = process(make_envelope(SIGNUP), service="signup", worker="w0", ledger=ledger)
    assert outcome.applied and outcome.key == "signup-3"


@pytest.mark.parametrize("headers", [
    {"fault": "always-fail"},
    {"fault": "fail-times", "n": 3},
    {"fault": "slow", "seconds": 30},
    {"fault": "crash", "at": "after-effect"},
])
def test_without_the_harness_switch_fault_directives_are_ignored(ledger, monkeypatch, caplog, headers):
    monkeypatch.delenv(FAULTS_ENV)
    started = time.monotonic()
    outcome = deliver(ledger, SIGNUP, "signup", headers)  # a crash directive would end this process
    assert outcome.applied and time.monotonic() - started < 5


def test_without_the_harness_switch_the_guard_cannot_be_turned_off(ledger, monkeypatch):
    monkeypatch.delenv(FAULTS_ENV)
    assert deliver(ledger, SIGNUP, "signup", {"idempotency": "off"}).applied
    assert not deliver(ledger, SIGNUP, "signup", {"idempotency": "off"}).applied
    assert len(ledger.outbox_rows()) == 1
