"""The Jepsen-style classification of a fault run, on hand-made histories (no brokers)."""
from __future__ import annotations

import pytest

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


def test_vanished_counts_consumed_records_the_broker_no_longer_holds_only_where_its_final_read_keeps_them():
    rec, fault = _history()
    final = {("k0", 0), ("k0", 4)}  # a stream after the heal: 1 and 2 were consumed, then discarded by a failover
    queue = analyse(rec, fault, "kafka", "acks=1", started=1.0, stopped=10.0, seconds=9.0, final=final)
    assert queue.vanished is None  # a queue's final read cannot see consumed records: not counted
    stream = analyse(rec, fault, "redis", "XADD", started=1.0, stopped=10.0, seconds=9.0, final=final,
                     keeps_consumed=True)
    assert stream.lost == 1  # k0/3 only: 1 and 2 were consumed
    assert stream.vanished == 3  # k0/1, 2 and 3: confirmed, not in the stream any more


def test_longest_gap_counts_the_edges():
    assert longest_gap([], 0.0, 5.0) == 5.0  # nothing at all: the whole window
    assert longest_gap([1.0, 2.0], 0.0, 10.0) == 8.0  # never resumed


def test_every_clustered_stack_has_fault_cases_on_its_own_broker():
    """A new stack joins the faults table or says why not: never left out silently (broker-free)."""
    from queuekit.stacks.registry import load_stack, stack_names
    from scenarios.cluster_faults import CASES, KINDS

    by_stack: dict[str, set[str]] = {}
    for case in CASES:
        if stack := dict(case.options).get("stack"):
            assert load_stack(stack).capabilities.broker == case.broker, case.id
            by_stack.setdefault(stack, set()).add(case.fault)
    # RabbitMQ and Kafka stacks must take part; a Redis stack does when it declares a ClusterPromise
    clustered = {n for n in stack_names()
                 if load_stack(n).capabilities.broker in ("rabbitmq", "kafka") or load_stack(n).cluster is not None}
    assert set(by_stack) == clustered
    assert all(kinds == set(KINDS) for kinds in by_stack.values())


def test_the_redis_cases_build_their_probes_without_a_broker(tmp_path, monkeypatch):
    """Each Redis variant through each fault; a stream's final read keeps consumed records, a list's does not."""
    from queuekit.core.config import Settings
    from scenarios.cluster_faults import CASES, KINDS

    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    s = Settings.from_env().with_(topology="cluster")
    redis_cases = [c for c in CASES if c.broker == "redis" and "stack" not in dict(c.options)]  # the raw probes
    assert {c.fault for c in redis_cases} == set(KINDS) and len({c.id for c in redis_cases}) == len(redis_cases)
    probes = {c.variant: c.probe(s) for c in redis_cases}  # clients connect lazily: nothing is reached
    assert {v: (p.variant, p.keeps_consumed) for v, p in probes.items()} == {
        "wait=0": ("XADD (async replication)", True), "wait=1": ("XADD + WAIT 1", True),
        "structure=list wait=0": ("LPUSH (async replication)", False),
        "structure=list wait=1": ("LPUSH + WAIT 1", False)}
    assert all(p.stream.startswith(s.redis_prefix) for p in probes.values())


def test_a_case_that_cannot_run_is_a_row_with_its_reason():
    from queuekit.report.faults import rows_of
    from queuekit.suite.faults import run_cases
    from scenarios.cluster_faults import FaultCase

    case = FaultCase("rabbitmq", (("stack", "celery"),), "kill", unsupported="no way to hurt it")
    [row] = rows_of(run_cases(None, [case]))  # type: ignore[arg-type]  # never reaches the cluster
    assert row["verdict"] == "not run" and row["unsupported"] == "no way to hurt it"


def test_the_main_report_carries_the_faults_section():
    from queuekit.report.faults import report_html, rows_of
    from queuekit.suite.faults import FaultOutcome

    rec, fault = _history()
    out = analyse(rec, fault, "kafka", "stack=kafka", started=1.0, stopped=10.0, seconds=9.0)
    info = {"id": "c", "broker": "kafka", "variant": "kafka", "fault": "kill", "promise": {"lost": 0}, "why": "",
            "stack": "kafka"}
    page = report_html(rows_of([(info, out, None)]))
    assert isinstance(out, FaultOutcome) and 'id="faults"' in page and "<svg" in page and "BROKEN" in page
    assert "1 stacks (kafka)" in page



def test_a_probe_that_cannot_start_gets_one_fresh_cluster_then_its_reason(monkeypatch):
    """Setup failing before any fault: the cluster is formed again once, then the row says why. No brokers:
    the probe never starts, and forming the cluster is recorded instead of done."""
    import queuekit.suite.faults as suite_faults
    from queuekit.report.faults import rows_of
    from scenarios.cluster_faults import FaultCase

    setups, fresh = [], []

    class NeverStarts:
        broker, variant = "rabbitmq", "stack=rabbitmq_stream"

        def setup(self):
            setups.append(1)
            raise TimeoutError("worker connected, never subscribed")

    monkeypatch.setattr(suite_faults, "wait_whole", lambda settings, broker: [])
    monkeypatch.setattr(suite_faults, "fresh_cluster", lambda settings, broker, say: fresh.append(broker))
    monkeypatch.setattr(FaultCase, "probe", lambda self, settings: NeverStarts())
    case = FaultCase("rabbitmq", (("stack", "rabbitmq_stream"),), "kill")
    [row] = rows_of(suite_faults.run_cases(None, [case]))  # type: ignore[arg-type]
    assert fresh == ["rabbitmq"] and len(setups) == 2  # once on the aged cluster, once on the fresh one
    assert row["verdict"] == "error" and "never subscribed" in row["error"], row


def test_a_probe_with_no_confirmed_publish_before_its_fault_did_not_start(monkeypatch):
    """Celery on Kafka's first publish once outlasted the warm-up: the fault hit it in flight and the row
    read "0 confirmed, 0 lost". Now the fault waits for a first confirm, and without one the probe did not
    start (its case gets the fresh-cluster retry), and no fault is injected."""
    import threading

    import queuekit.suite.faults as suite_faults
    from queuekit.core.config import Settings

    injected, closed = [], []

    class NeverConfirms:
        broker, variant = "kafka", "stack=celery_kafka"

        def setup(self):
            pass

        def start(self, rec, stop):
            rec.on_sent("k", 0)  # sent, never confirmed
            return [threading.Thread(target=stop.wait)]

        def leader(self):
            injected.append("asked for the leader")
            return 0

        def close(self):
            closed.append(1)

    monkeypatch.setattr(suite_faults, "wait_whole", lambda settings, broker: [])
    with pytest.raises(suite_faults.SetupFailed, match="1 sent, 0 failed, none confirmed"):
        suite_faults.run_cell(Settings.from_env(), NeverConfirms(), "pause", suite_faults.Plan(first_confirm=0.3))
    assert injected == [] and closed == [1]
