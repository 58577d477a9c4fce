"""The Jepsen-style classification of a fault run, on hand-made histories (no brokers)."""
from __future__ import annotations

from queuekit.brokers.faults import FaultRecord
from queuekit.suite.faults import Recorder, analyse, longest_gap


def _history() -> tuple[Recorder, FaultRecord]:
    rec = Recorder()
    for seq, t in enumerate([1.0, 2.0, 3.0, 4.0, 9.0]):  # k0: 0..4 published; a 5 s gap in confirmations
        rec.sent[("k0", seq)] = t
        rec.confirmed[("k0", seq)] = t + 0.1
    rec.sent[("k0", 5)] = 9.5
    rec.failed[("k0", 5)] = "timed out"  # never confirmed...
    rec.effects = [("k0", 0, 1.2), ("k0", 2, 3.2), ("k0", 1, 3.3),  # 1 after 2: one order violation
                   ("k0", 2, 3.4),  # a redelivery: a duplicate, not a second violation
                   ("k0", 5, 9.8)]  # ...but applied: unexpected
    return rec, FaultRecord("kill", "kafka", 0, "198.18.0.21", injected_at=3.5, healed_at=8.0)


def test_a_history_is_classified_record_by_record():
    rec, fault = _history()
    out = analyse(rec, fault, "kafka", "acks=1", started=1.0, stopped=10.0, seconds=9.0, final={("k0", 4)})
    assert out.confirmed == 5 and out.failed == 1 and out.published == 6
    assert out.lost == 1  # k0/3: confirmed, never consumed, not in the final read
    assert out.stranded == 1  # k0/4: confirmed, not consumed, still in the broker
    assert out.duplicates == 1 and out.unexpected == 1 and out.order_violations == 1
    assert out.publish_gap_s == 5.0  # 4.1 -> 9.1 inside [3.5, 10]
    assert out.consume_gap_s == 6.3  # 3.5 -> 9.8 (first effects only)


def test_longest_gap_counts_the_edges():
    assert longest_gap([], 0.0, 5.0) == 5.0  # nothing at all: the whole window
    assert longest_gap([1.0, 2.0], 0.0, 10.0) == 8.0  # never resumed
