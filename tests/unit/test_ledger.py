"""The shared ledger: the idempotency guard, ordering counts, and concurrent writers."""
from __future__ import annotations

import multiprocessing
import pickle
import threading

import pytest

from queuekit.core.ledger import Ledger


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


def apply(ledger: Ledger, key: str, *, service: str = "svc", guard: bool = True, seq=None, user_id=None, **kw):
    return ledger.apply_effect(
        service, key, workload="w", message_id=f"m-{key}", worker="test", payload={"key": key},
        seq=seq, user_id=user_id, guard=guard, **kw,
    )


def test_pragmas(ledger):
    conn = ledger._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_LEDGER", str(tmp_path / "env.sqlite3"))
    assert Ledger().path == tmp_path / "env.sqlite3"
    monkeypatch.delenv("QUEUEKIT_LEDGER")
    with pytest.raises(ValueError, match="QUEUEKIT_LEDGER"):
        Ledger()


def test_guard_yields_one_effect_for_two_applies(ledger):
    assert apply(ledger, "k1") is True
    assert apply(ledger, "k1") is False
    assert len(ledger.effects(service="svc")) == 1
    assert ledger.duplicates("svc") == {}
    assert apply(ledger, "k1", service="other") is True  # keys are per service


def test_without_guard_both_applies_land(ledger):
    assert apply(ledger, "k1", guard=False) is True
    assert apply(ledger, "k1", guard=False) is True
    assert ledger.duplicates("svc") == {"k1": 2}
    assert ledger.effect_counts() == {"svc": 2}


def test_callback_commits_with_the_key(ledger):
    staged = lambda outbox: outbox.add(recipient="a@example.test", subject="hi")  # noqa: E731
    assert apply(ledger, "k1", on_claim=staged)
    assert not apply(ledger, "k1", on_claim=staged)
    assert [(r["key"], r["recipient"]) for r in ledger.outbox_rows()] == [("k1", "a@example.test")]


def test_failing_callback_rolls_everything_back(ledger):
    def broken(outbox):
        outbox.add(recipient="a@example.test", subject="hi")
        raise RuntimeError("smtp down")

    with pytest.raises(RuntimeError):
        apply(ledger, "k1", on_claim=broken)
    assert ledger.count("effects") == ledger.count("idempotency") == ledger.count("outbox") == 0
    assert apply(ledger, "k1")  # the key is still free for the retry


def test_effects_read_back(ledger):
    apply(ledger, "k1", seq=4, user_id=9, sent_at=1.0, started_at=2.0)
    (effect,) = ledger.effects(workload="w")
    assert (effect.service, effect.key, effect.seq, effect.user_id, effect.sent_at) == ("svc", "k1", 4, 9, 1.0)
    assert effect.payload == {"key": "k1"}
    assert ledger.effect_payload("svc", "k1") == {"key": "k1"}
    assert ledger.effect_payload("svc", "nope") is None
    assert ledger.effects(workload="other") == []


def test_attempt_numbers_count_per_service_and_key(ledger):
    tickets = [ledger.record_attempt(workload="w", service="svc", key="k", message_id="m", worker="t") for _ in range(3)]
    assert [t.number for t in tickets] == [1, 2, 3]
    assert ledger.record_attempt(workload="w", service="svc", key="other", message_id="m", worker="t").number == 1
    ledger.finish_attempt(tickets[0].id, "error", "TransientError: boom")
    ledger.finish_attempt(tickets[1].id, "ok")
    attempts = ledger.attempts_for("svc", "k")
    assert [(a.attempt, a.outcome, a.error) for a in attempts] == [
        (1, "error", "TransientError: boom"), (2, "ok", None), (3, None, None),  # 3 still running
    ]
    assert ledger.count("attempts", outcome=None) == 2
    with pytest.raises(ValueError):
        ledger.finish_attempt(tickets[2].id, "maybe")


def test_order_violations_counts_a_known_shuffle(ledger):
    applied = [(1, 0), (2, 3), (1, 2), (3, 0), (2, 0), (1, 1), (3, 1), (2, 1), (1, 3), (2, 2), (3, 2), (3, 2)]
    # user 1: 0 2 1 3 -> 1 late;  user 2: 3 0 1 2 -> 3 late;  user 3: 0 1 2 2 -> in order (a duplicate is not late)
    for user_id, seq in applied:
        apply(ledger, f"{user_id}-{seq}", guard=False, seq=seq, user_id=user_id)
    for user_id, seq in sorted(applied):
        apply(ledger, f"{user_id}-{seq}", service="in-order", guard=False, seq=seq, user_id=user_id)
    assert ledger.order_violations("svc") == 4
    assert ledger.order_violations("in-order") == 0
    assert ledger.order_violations("missing") == 0


def test_in_flight_max(ledger):
    start = lambda: ledger.record_attempt(workload="w", service="svc", key="k", message_id="m", worker="t")  # noqa
    a, b, _c = start(), start(), start()
    ledger.finish_attempt(a.id, "ok")
    ledger.finish_attempt(b.id, "ok")
    start()
    assert ledger.in_flight_max(service="svc") == 3
    assert ledger.in_flight_max(service="other") == 0


def test_count_reset_and_stats(ledger):
    apply(ledger, "k1")
    apply(ledger, "k2")
    assert ledger.count("effects", key="k1") == 1
    with pytest.raises(ValueError):
        ledger.count("sqlite_master")
    with pytest.raises(ValueError):
        ledger.count("effects", colour="red")
    stats = ledger.ledger_stats()
    assert (stats["effects"], stats["idempotency"], stats["journal_mode"]) == (2, 2, "wal")
    ledger.reset()
    assert ledger.ledger_stats()["effects"] == 0
    assert apply(ledger, "k1")  # keys were released too


def test_pickles_as_its_path(ledger):
    ledger.count("effects")  # open a connection first
    copy = pickle.loads(pickle.dumps(ledger))
    assert copy.path == ledger.path and copy.count("effects") == 0


def write_effects(ledger: Ledger, writer: int, n: int, shared_keys: bool, start_together=None) -> None:
    if start_together is not None:
        start_together.wait()
    for i in range(n):
        key = f"k{i}" if shared_keys else f"w{writer}-{i}"
        ledger.apply_effect("svc", key, workload="w", message_id=key, worker=f"w{writer}", payload={"i": i})


@pytest.mark.parametrize("shared_keys, expected", [(False, 4 * 500), (True, 500)], ids=["distinct-keys", "same-keys"])
@pytest.mark.parametrize("parent_connected", [True, False], ids=["parent-connected", "fresh-file"])
def test_concurrent_writer_processes(ledger, shared_keys, expected, parent_connected):
    if parent_connected:
        ledger.count("effects")  # the parent holds a connection across fork: children must reopen their own
    ctx = multiprocessing.get_context("fork")
    start_together = ctx.Barrier(4)
    procs = [ctx.Process(target=write_effects, args=(ledger, w, 500, shared_keys, start_together)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    assert ledger.count("effects") == expected  # with shared keys: each key applied exactly once
    assert ledger.duplicates("svc") == {}
    if not shared_keys:
        assert len({e.pid for e in ledger.effects()}) == 4


def test_concurrent_writer_threads(ledger):
    threads = [threading.Thread(target=write_effects, args=(ledger, w, 100, False)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.count("effects") == 400
