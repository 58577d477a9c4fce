"""The latency curves' broker-free parts: the schedule, hop sampling, a point's JSON, the raw rows in the report.

A point is driven here through an in-memory run (the ``measure.Paced`` protocol, no broker): what is
tested is the measuring code, the same code that drives a stack and a raw client pair.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from queuekit.bench import measure, raw_family, raw_latency, report
from queuekit.core.envelope import decode
from queuekit.stacks.registry import STACKS, load_stack

COMMITTED = Path(__file__).parents[2] / "docs" / "bench" / "bench-2core-20261126-1016.json"


class InMemoryRun:
    """Completes each message 2 ms after its publish call, fetched at 1 ms and appended at 0.5 ms (sampled)."""

    timings_dir = Path("/nonexistent")  # no earlier points
    copies = 1
    encoded = True
    publishers = 2

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.seen: dict[str, tuple[float | None, float | None]] = {}

    def send(self, thread: int, plan: measure.Plan, batch: list[int]) -> None:
        now = time.time()
        for i in batch:
            doc = json.loads(plan.payloads[i])
            self.rows.append((doc["id"], doc["sent_at"], now + 0.0015, now + 0.002, None, thread, 1))
            if doc["headers"]:
                self.seen[doc["id"]] = (now + 0.0005, now + 0.001)

    def key(self, env) -> str:
        return env.id

    def wait(self, n: int, timeout: float = 600) -> list[tuple]:
        assert len(self.rows) >= n
        return self.rows

    def hops(self) -> dict[str, tuple[float | None, float | None]]:
        return self.seen


def test_the_schedule_is_paced_and_samples_one_in_fifty():
    plan = measure.plan(rate=1000, seconds=0.2, seed=1, max_messages=20_000, encoded=True)
    assert len(plan.planned) == 200 and plan.planned[0] > time.time()  # built before its clock starts
    assert all(abs(b - a - 0.001) < 1e-6 for a, b in zip(plan.planned, plan.planned[1:]))
    flagged = [i for i, payload in enumerate(plan.payloads) if decode(payload).headers]
    assert flagged == list(range(0, 200, measure.SAMPLE_EVERY))  # only these carry the hop header
    assert [decode(p).sent_at for p in plan.payloads] == plan.planned  # stamped with the INTENDED time
    stack_plan = measure.plan(rate=1000, seconds=0.2, seed=1, max_messages=50)
    assert len(stack_plan.planned) == 50 and not stack_plan.payloads  # a stack's publish encodes
    assert not any(e.headers for e in stack_plan.envelopes)  # a stack's messages carry no hop header


def test_a_paced_point_reports_latency_and_median_hops():
    run = InMemoryRun()
    point = measure.paced(run, rate=1000, seconds=0.2, seed=2)
    assert point["samples"] == 180  # the first TRIM of the schedule is warm-up
    assert 2.0 <= point["p50_ms"] <= point["p99_ms"] < 100  # 2 ms after a publish that is about on time
    assert point["producer_bound"] == (point["achieved_send"] < 0.95 * point["offered"])
    hops = point["hops"]
    assert hops["sampled"] == 4 and hops["every"] == measure.SAMPLE_EVERY
    assert list(hops["median_ms"]) == ["intended->published", "published->appended", "appended->fetched",
                                       "fetched->started", "started->completed"]
    assert abs(hops["median_ms"]["published->appended"] - 0.5) < 0.05
    assert abs(hops["median_ms"]["started->completed"] - 0.5) < 0.05


def test_a_stamp_not_seen_is_skipped_and_its_hop_spans_the_gap():
    run = InMemoryRun()
    run.hops = lambda: {}  # type: ignore[method-assign]  # a stack: no append or fetch time
    hops = measure.paced(run, rate=1000, seconds=0.1, seed=3)["hops"]["median_ms"]
    assert list(hops) == ["intended->published", "published->started", "started->completed"]
    assert abs(hops["published->started"] - 1.5) < 0.05


def test_every_stack_has_a_raw_client_family():
    for name in STACKS:
        assert raw_family(name) in raw_latency.RUNS, name
    assert raw_family("rabbitmq_stream") == "rabbitmq_stream"  # declared: rstream, not pika
    assert raw_family("celery") == "rabbitmq" and raw_family("kafka_share") == "kafka"
    assert raw_family("rq") == "redis" == load_stack("redis_streams").capabilities.broker


def test_the_report_puts_each_raw_curve_under_its_stack():
    result = json.loads(COMMITTED.read_text())
    old = report.markdown(result)  # a JSON from before raw curves and hops still renders
    assert "↳ raw" not in old and "where the time goes" not in old
    result = copy.deepcopy(result)
    kafka = result["stacks"]["kafka"]
    for point in kafka["latency"]:
        point["hops"] = {"sampled": 3, "every": 50, "median_ms": {"intended->published": 0.1,
                                                                  "published->started": 3.0}}
    raw_points = [{**p, "p50_ms": 1.5, "p99_ms": 7.25, "producer_bound": False,
                   "hops": {"sampled": 3, "every": 50, "median_ms": {"appended->fetched": 1.25}}}
                  for p in kafka["latency"]]
    kafka["raw_latency"] = {"family": "kafka", "client": "confluent-kafka", "consumers": 4, "points": raw_points}
    text = report.markdown(result)
    lines = text.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("| kafka | 106.3")))
    assert lines[at + 1] == "| ↳ raw confluent-kafka (for kafka) | " + " | ".join(["1.5 / 7.2"] * 4) + " |"
    assert "| kafka | intended->published 0.1 · published->started 3.0 |" in lines
    assert "| ↳ raw confluent-kafka (for kafka) | appended->fetched 1.2 |" in lines
    assert "| celery | – |" in lines  # a stack without hops says so
    assert len(report.tables(result)[2].rows) == sum(len(s["latency"]) for s in result["stacks"].values()) + 4


def test_a_sampled_delivery_carries_its_stamps_to_the_completion_it_records(tmp_path):
    import asyncio

    from queuekit.core import timings

    rec = timings.Timings(tmp_path)
    with timings.delivery(12.5):
        rec.record("sampled", 1.0, 2.0)
    rec.record("not-sampled", 1.0, 2.0)  # after the sampled one: its stamps are gone

    async def stream_reader() -> None:  # the stream adapter: set in the coroutine, recorded in to_thread
        with timings.delivery(None):
            await asyncio.to_thread(rec.record, "in-a-thread", 1.0, 2.0)

    asyncio.run(stream_reader())
    rec.flush()
    hops = timings.read_hops(tmp_path)
    assert set(hops) == {"sampled", "in-a-thread"}
    assert hops["sampled"][0] == 12.5 and hops["in-a-thread"][0] is None
    assert all(time.time() - 5 < fetched <= time.time() for _, fetched in hops.values())
    assert timings.count(tmp_path) == 3  # the rows themselves are unchanged
