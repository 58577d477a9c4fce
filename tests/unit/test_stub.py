"""The in-memory StubStack keeps the Stack protocol's delivery rules, without a broker (threads, real ledger)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import BAD_TYPE, payload_of, signups

from queuekit.core.config import Settings
from queuekit.core.envelope import make_envelope
from queuekit.core.errors import WaitTimeout
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.registry import stack_names
from queuekit.stacks.stub import STUB_CAPABILITIES, StubStack
from workloads import WORKLOADS


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.db")


@pytest.fixture
def make(ledger):
    made = []

    def build(cls=StubStack, **options):
        stack = cls(Settings.from_env(), ledger.path)
        stack.reset()
        stack.start(["signup"] if "workload" not in options else [options.pop("workload")], StackOptions(**options))
        made.append(stack)
        return stack

    yield build
    for stack in made:
        stack.stop()


def test_the_stub_is_never_a_column_of_the_real_comparison():
    assert "stub" not in stack_names()


def test_join_returns_when_every_message_is_settled(make, ledger):
    stack = make(workers=2, concurrency=2)
    report = stack.publish("signup", signups(30, 1))
    assert (report.confirmed, report.refused, report.broker_messages) == (30, 0, 30)
    stack.join("signup", timeout=10)  # deterministic: no polling of effects needed afterwards
    assert len(ledger.effects(service="signup")) == 30 and stack.backlog("signup") == 0
    assert {e.worker for e in ledger.effects(service="signup")} <= {"stub-0", "stub-1"}


def test_join_times_out_naming_what_is_left(make):
    stack = make(workers=1)
    stack.publish("signup", signups(1, 2, fault="slow", seconds=1.0))
    with pytest.raises(WaitTimeout, match="1 left"):
        stack.join("signup", timeout=0.2)


def test_retries_back_off_then_dead_letter_with_the_reason(make, ledger):
    stack = make(workers=1, max_retries=2, backoff_ms=50)
    flaky, hopeless = signups(2, 3, {"fault": "fail-times", "n": 1}, {"fault": "fail-times", "n": 9})
    stack.publish("signup", [flaky, hopeless])
    stack.publish_raw("signup", BAD_TYPE)
    stack.join("signup", timeout=10)
    dead = {d.payload: d.reason for d in stack.dead_letters("signup")}
    assert dead[BAD_TYPE] == "MalformedMessage: field 'user_id' must be int"
    assert dead[payload_of(hopeless, dead)] == "retries exhausted after 3 attempts: TransientError: injected failure 3/9"
    starts = [a.started_at for a in ledger.attempts_for("signup", hopeless.key)]
    assert starts[1] - starts[0] >= 0.05 and starts[2] - starts[1] >= 0.1  # doubling backoff
    assert [a.outcome for a in ledger.attempts_for("signup", flaky.key)] == ["error", "ok"]


def test_fan_out_follows_the_declared_capability(make, ledger):
    for seed, (cls, per_event) in enumerate(((StubStack, 1), (StubStack.variant("copies", native_fanout=False), 2))):
        stack = make(cls, workload="tracking")
        events = [make_envelope(m) for m in WORKLOADS["tracking"].make_messages(5, seed=seed)]
        assert stack.publish("tracking", events).messages_per_envelope == per_event
        stack.join("tracking", timeout=10)
        stack.stop()
        for service in WORKLOADS["tracking"].services:  # either way every subscriber sees every event once
            assert {e.key for e in events} <= {e.key for e in ledger.effects(service=service)}
            assert ledger.duplicates(service) == {}


def test_kill_redelivers_what_the_worker_held_unless_acked_on_receipt(make, ledger):
    for early, outcomes in ((False, [None, "ok"]), (True, [None])):
        stack = make(workers=2, early_ack=early)
        [slow] = signups(1, 10 + early, fault="slow", seconds=0.5)
        stack.publish("signup", [slow])
        pid = stack.kill_worker_holding("signup", slow.key, timeout=5)
        assert pid not in stack.worker_pids() and not stack.pool.alive(stack.worker_index(
            ledger.attempts_for("signup", slow.key)[0].worker))
        stack.join("signup", timeout=10)
        assert [a.outcome for a in ledger.attempts_for("signup", slow.key)] == outcomes
        stack.stop()


def test_a_bounded_queue_refuses_unless_pull_based(make, ledger):
    for cls, accepted in ((StubStack, 2), (StubStack.variant("log", pull_based=True), 6)):
        stack = make(cls, workers=1, queue_max_length=2)
        [slow] = signups(1, 20 + accepted, fault="slow", seconds=0.3)
        stack.publish("signup", [slow])
        wait_for(lambda key=slow.key: ledger.attempts_for("signup", key), timeout=5, what="the slow one in hand")
        report = stack.publish("signup", signups(6, 30 + accepted))
        assert (report.confirmed, report.refused) == (accepted, 6 - accepted)
        stack.join("signup", timeout=10)
        stack.stop()


def test_replay_reads_history_only_where_the_stub_keeps_a_log(make, ledger):
    for cls, replayed in ((StubStack, 0), (StubStack.variant("log", replayable=True), 4)):
        stack = make(cls)
        stack.publish("signup", signups(4, 40 + replayed))
        stack.join("signup", timeout=10)
        assert stack.replay("signup") == replayed
        stack.stop()
    one = StubStack(Settings.from_env(), ledger.path, capabilities=replace(STUB_CAPABILITIES, replayable=True))
    one.start(["signup"])  # capabilities set on one instance
    one.publish("signup", signups(3, 50))
    one.join("signup", timeout=10)
    assert one.replay("signup") == 3 and StubStack.capabilities.replayable is False
    one.stop()
