"""The per-message fast paths a worker runs in ``queuekit bench`` give what the plain paths give.

``envelope._decode_typed`` (msgspec Structs, one pass) must accept exactly what the full checks
accept and build the same envelope; ``frozen`` the same object as the dataclass constructor;
the timings recorder's compact lines and sampled CPU clock the same rows and CPU per message.
"""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from queuekit.bench.measure import steady, steady_window
from queuekit.core import envelope, timings
from queuekit.core.envelope import MalformedMessage, decode, encode, make_envelope
from queuekit.core.execute import Outcome
from queuekit.core.frozen import frozen
from queuekit.core.timings import CPU_EVERY_S, Timings, collect, count
from workloads import WORKLOADS
from workloads.messages import SignupRequested


def full_path(data: bytes):
    """``decode`` without its fast path: the reference."""
    saved = envelope._decode_typed
    envelope._decode_typed = lambda data: None
    try:
        return decode(data)
    finally:
        envelope._decode_typed = saved


def outcome_of(fn, data: bytes):
    try:
        return "ok", repr(fn(data))  # repr: 2 == 2.0, but a float field must hold a float
    except MalformedMessage as exc:
        return "malformed", exc.reason


def signup_doc() -> dict:
    env = make_envelope(SignupRequested(user_id=7, email="a@example.test", idempotency_key="k"), id="m", sent_at=1.5)
    return json.loads(encode(env))


# What the hostile-input limits refuse (core/envelope.py MAX_*): the fast path must refuse it too.
OVER_THE_LIMITS = (
    lambda d: d["body"].update(user_id=2**70),  # beyond SQLite's INTEGER
    lambda d: d["body"].update(email="e" * 5000),  # a string over MAX_STRING
    lambda d: d.update(sent_at=1e308),  # finite, but a 3-digit exponent: taken by the full path
    lambda d: d.update(headers={"fault": "slow", "seconds": 1e6}),
    lambda d: d.update(schema="video.uploaded", body={"video_id": 1, "user_id": 7, "duration_s": 1e6}),
    # An int literal over 64 bits where a float is declared: msgspec's float would take it as 1e30.
    lambda d: d.update(sent_at=10**30),
    lambda d: d.update(schema="video.uploaded", body={"video_id": 1, "user_id": 7, "duration_s": 10**30}),
    lambda d: d.update(headers={"trace": 2**64}),  # free-form headers: msgspec's Any has no limits
    lambda d: d.update(headers={"trace": {"k" * 2000: 1}}),
)


def variants() -> list[bytes]:
    """Well-formed envelopes of every workload, and near misses the fast path must leave to the full checks."""
    out = [encode(make_envelope(m, h)) for w in WORKLOADS.values() for m in w.make_messages(5, seed=1)
           for h in ({}, {"fault": "fail-times", "n": 2}, {"upstream": {"a": 1}}, {"fault": "crash", "at": "x"})]
    for change in (
        lambda d: d.update(sent_at=2),  # an int where a float is declared: converted, by the full path
        lambda d: d["body"].update(user_id=True),  # a bool is not an int
        lambda d: d["body"].update(user_id="7"),
        lambda d: d["body"].update(extra=1),
        lambda d: d["body"].pop("email"),
        lambda d: d.update(version=2),
        lambda d: d.update(version=1.0),
        lambda d: d.update(schema="nope"),
        lambda d: d.update(schema=3),
        lambda d: d.update(id=None),
        lambda d: d.update(headers=[]),
        lambda d: d.update(body=[]),
        lambda d: d.update(extra=1),
        lambda d: d.pop("headers"),
        lambda d: d.update(headers={"fault": "slow", "seconds": -1}),
        *OVER_THE_LIMITS,
    ):
        doc = signup_doc()
        change(doc)
        out.append(json.dumps(doc).encode())
    good = encode(make_envelope(SignupRequested(1, "b@example.test", "k2")))
    out += [b" " + good, good + b"\n", good + b"x", b"[1]", b"{", b"\xff", b"", b'"x"', b"NaN",
            good.replace(b'"id":', b'"id":"first","id":'),  # a repeated name: the last one wins in both
            good.replace(b'b@example.test', b'\\ud800'),  # a lone surrogate: msgspec refuses, json takes it
            good.replace(b'b@example.test', "\u00e9".encode() * 1024),  # 1024 characters, 2048 bytes: fine
            good.replace(b'b@example.test', "\u00e9".encode() * 1025),
            good.replace(b'"headers":{}', b'"headers":{"trace":' + b"9" * 5000 + b"}"),  # Python's int-digit limit
            good.replace(b'"headers":{}', b'"headers":{"trace":-0.0,"n":1E3}')]
    return out


@pytest.mark.parametrize("data", variants(), ids=lambda d: d[:60].decode("utf-8", "replace"))
def test_decode_equals_the_full_checks(data):
    assert outcome_of(decode, data) == outcome_of(full_path, data)


@pytest.mark.parametrize("change", OVER_THE_LIMITS[:2] + OVER_THE_LIMITS[3:])
def test_what_the_limits_refuse_the_fast_path_refuses(change):
    doc = signup_doc()
    change(doc)
    with pytest.raises(MalformedMessage):
        decode(json.dumps(doc).encode())


def test_the_fast_path_takes_what_encode_writes():
    env = make_envelope(SignupRequested(user_id=1, email="a@example.test", idempotency_key="k"), {"fault": "cpu",
                                                                                                  "rounds": 3})
    fast = envelope._decode_typed(encode(env))
    assert fast == env and type(fast.body) is SignupRequested


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_typed_path_takes_every_workload(workload):
    """Every message a workload makes is accepted by msgspec's one pass, not left to the checked path."""
    for msg in WORKLOADS[workload].make_messages(20, seed=2):
        env = make_envelope(msg, {"fault": "fail-times", "n": 1, "upstream": {"a": [1, 2.5, "x"]}})
        typed = envelope._decode_typed(encode(env))
        assert typed == env and repr(typed) == repr(env)


def test_frozen_builds_the_dataclass():
    fields = dict(user_id=3, email="u3@example.test", idempotency_key="signup-3")
    made = frozen(SignupRequested, **fields)
    assert made == SignupRequested(**fields) and repr(made) == repr(SignupRequested(**fields))
    assert hash(made) == hash(SignupRequested(**fields))
    with pytest.raises(AttributeError):
        made.email = "other"


def test_outcome_is_immutable_and_says_its_status():
    made = Outcome("signup", "k", "m", 1, False, {"a": 1})
    assert made == Outcome(service="signup", key="k", message_id="m", attempt=1, applied=False, result={"a": 1})
    assert made.status == "duplicate" and made.result == {"a": 1}
    with pytest.raises(AttributeError):
        made.key = "other"  # type: ignore[misc]


def test_timings_rows_round_trip_with_a_sampled_cpu_clock(tmp_path, monkeypatch):
    rec = Timings(tmp_path)
    start = time.time()
    for i in range(50):
        rec.record(f"k-{i}", start if i else None, start)
    later = start + CPU_EVERY_S * 2  # the recorder's clock moved past its next sample, without waiting for it
    monkeypatch.setattr(timings, "time", SimpleNamespace(time=lambda: later, process_time=time.process_time))
    rec.record("last", start, start)
    monkeypatch.undo()
    rec.flush()
    rows = collect(tmp_path)
    assert count(tmp_path) == len(rows) == 51
    assert [r[0] for r in rows] == [f"k-{i}" for i in range(50)] + ["last"]
    assert rows[0][1] is None and rows[1][1] == pytest.approx(start, abs=1e-6)
    assert all(start - 1e-6 <= r[3] <= max(later, time.time()) + 1e-6 for r in rows)
    cpu = [r[4] for r in rows]
    assert cpu[0] is not None and cpu[-1] is not None and cpu.count(None) >= 1  # sampled, not per row


def test_steady_cpu_per_message_counts_between_samples():
    # one process, 1 ms apart, 10 µs of CPU per completion, sampled every 5th row
    rows = [(f"k{i}", 0.0, 0.0, i * 0.001, i * 10e-6 if i % 5 == 0 else None, 7, 1) for i in range(101)]
    assert steady(rows)["cpu_us"] == pytest.approx(10.0)


def test_steady_cpu_falls_back_to_the_whole_run_when_the_window_holds_under_two_samples():
    # 101 completions, samples only at the first and the last row: the trimmed window holds none of them
    # (a fast consumer's whole backlog inside one sampling interval), so CPU per message is the run's
    rows = [(f"k{i}", 0.0, 0.0, i * 0.001, i * 10e-6 if i in (0, 100) else None, 7, 1) for i in range(101)]
    assert steady(rows)["cpu_us"] == pytest.approx(10.0)


def test_the_steady_window_opens_when_the_last_slot_starts_and_closes_when_the_first_runs_dry():
    # slot A (pid 1) works alone for 2 s at 100/s, then B (pid 2) joins: both at 100/s until A stops at 6 s
    a = [(f"a{i}", 0.0, 0.0, i * 0.01, None, 7, 1) for i in range(601)]
    b = [(f"b{i}", 0.0, 0.0, 2.0 + i * 0.01, None, 7, 2) for i in range(501)]  # to 7 s
    lo, hi = steady_window(a + b, trim=0.0)
    assert (lo, hi) == (2.0, 6.0)
    assert steady(a + b, trim=0.0)["rate"] == pytest.approx(200, rel=0.01)  # two slots' worth, not 1102 / 7 s
    assert 0.7 < steady(a + b, trim=0.0)["window_share"] < 0.75
    same_pid_other_thread = [(k, s, st, f, c, 8, 1) for k, s, st, f, c, _, _ in b]  # a slot is (pid, thread)
    assert steady_window(a + same_pid_other_thread, trim=0.0) == (2.0, 6.0)


def test_a_message_completed_by_two_workers_counts_once():
    """A 3.10 stream's workers each read every message: 2 completions of one message are 1 message done."""
    mine = [(f"k{i}", 0.0, 0.0, i * 0.01, None, 7, 1) for i in range(101)]
    theirs = [(k, s, st, f + 0.005, c, 7, 2) for k, s, st, f, c, _, _ in mine]
    assert steady(mine + theirs, trim=0.0)["rate"] == pytest.approx(steady(mine, trim=0.0)["rate"], rel=0.02)
    assert steady(mine, trim=0.0)["rate"] == pytest.approx(100, rel=0.02)


def test_slots_that_never_overlap_fall_back_to_the_trimmed_window():
    # a Kafka member drains its partition before the next one joins: no moment with both at work
    a = [(f"a{i}", 0.0, 0.0, i * 0.01, None, 7, 1) for i in range(100)]
    b = [(f"b{i}", 0.0, 0.0, 2.0 + i * 0.01, None, 7, 2) for i in range(100)]
    assert steady_window(a + b, trim=0.1) == (0.2, 2.79)  # the middle 80%, not an empty window
    assert steady(a + b, trim=0.1)["rate"] > 0


class _Member:
    """What StartGate calls on a confluent-kafka Consumer, recorded."""

    def __init__(self):
        self.owned: list = []
        self.paused: set = set()

    def incremental_assign(self, partitions):
        self.owned += partitions

    def pause(self, partitions):
        self.paused |= set(partitions)

    def resume(self, partitions):
        self.paused -= set(partitions)

    def assignment(self):
        return list(self.owned)


def test_the_bare_kafka_start_gate_holds_assigned_partitions_until_its_file_exists(tmp_path):
    from bare.kafka_worker import StartGate

    gate, member = StartGate(str(tmp_path / "go")), _Member()
    gate.assigned(member, ["p0", "p1"])
    gate.check(member)
    assert member.owned == ["p0", "p1"] and member.paused == {"p0", "p1"}, "a shut gate must fetch nothing"
    (tmp_path / "go").touch()
    gate.check(member)
    assert gate.open and member.paused == set()
    gate.assigned(member, ["p2"])  # a later increment is consumed at once
    assert member.paused == set() and member.owned == ["p0", "p1", "p2"]
    assert StartGate(None).open, "no gate configured: consume from the start"


# -- Dramatiq frames: msgspec's shape check against the field-by-field one ------------------------------
def dramatiq_frames() -> list[bytes]:
    """The kit's own frames for every actor, and near misses the typed shape must leave to the checks."""
    import dramatiq_app.actors as actors

    arg = actors.to_arg(encode(make_envelope(SignupRequested(1, "b@example.test", "k2"))))
    own = [m.encode() for w in WORKLOADS for m in actors.entry_messages(w, arg.encode())]
    doc = json.loads(own[0])
    out = list(own)
    for change in (
        lambda d: d.pop("message_id"), lambda d: d.pop("message_timestamp"), lambda d: d.pop("options"),
        lambda d: d.update(message_timestamp=True), lambda d: d.update(message_timestamp=1.0),
        lambda d: d.update(message_timestamp=2**70), lambda d: d.update(args="x"), lambda d: d.update(args=[]),
        lambda d: d.update(kwargs=[]), lambda d: d.update(kwargs={"x": 1}), lambda d: d.update(extra=1),
        lambda d: d.update(actor_name="nope"), lambda d: d.update(queue_name="dramatiq.video.transcode"),
        lambda d: d.update(options={"retries": "3"}), lambda d: d.update(options={"max_retries": 1}),
        lambda d: d.update(options={"eta": 10**20}), lambda d: d.update(args=[[[[[[[[]]]]]]]] * 20),
    ):
        changed = json.loads(json.dumps(doc))
        change(changed)
        out.append(json.dumps(changed).encode())
    out += [b"[]", b"{", b"\xff", b"NaN", own[0].replace(b'"actor_name":', b'"actor_name":"x","actor_name":')]
    return out


@pytest.mark.parametrize("body", dramatiq_frames(), ids=lambda d: d[:50].decode("utf-8", "replace"))
def test_a_dramatiq_frame_gets_the_same_verdict_and_message_either_way(body, monkeypatch):
    import dramatiq

    from dramatiq_app import frames

    broker = dramatiq.get_broker()
    try:
        queue = str(json.loads(body)["queue_name"])  # the queue it claims to come from: its actor's, for the kit's
    except (ValueError, KeyError, TypeError):
        queue = "dramatiq.signup"
    fast = frames.checked_message(body, queue, broker)
    monkeypatch.setattr(frames, "_typed_fields", lambda body: None)
    checked = frames.checked_message(body, queue, broker)
    assert fast[1] == checked[1]
    if b"message_id" in body:  # a frame without one gets a fresh id from Dramatiq on either path
        assert fast[0] == checked[0]


def test_the_kits_own_frames_take_the_typed_path():
    from dramatiq_app import frames

    for body in dramatiq_frames()[:4]:
        assert frames._typed_fields(body) == json.loads(body)
