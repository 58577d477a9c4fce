"""The bench's padded envelopes are ones the kit's workers accept (a rejected one never completes: the
bench then waits 600 s for completions that cannot come, as the 10 KB payload point once did)."""
from __future__ import annotations

import pytest

from queuekit.bench.measure import envelopes
from queuekit.core.envelope import decode, encode


@pytest.mark.parametrize("size", [None, 10_000, 100_000])
@pytest.mark.parametrize("mode", ["noop", "io", "cpu"])
def test_every_payload_size_of_the_curves_decodes_at_about_its_size(size, mode):
    for env in envelopes(3, mode, size, seed=1):
        data = encode(env)
        assert decode(data).id == env.id  # MalformedMessage here is the bug
        if size:
            assert abs(len(data) - size) <= 0.01 * size, len(data)


def test_a_noop_backlog_lasts_about_the_same_time_on_every_stack():
    from queuekit.bench import BenchConfig

    cfg = BenchConfig()
    assert cfg.count("noop", 1_500.0) == 6_000 and type(cfg.count("noop", 1_500.0)) is int  # 4 s at its rate
    assert cfg.count("noop", 16_000.0) == 64_000  # a stream consumer: 3,000 would be 0.2 s
    assert cfg.count("noop", 200.0) == cfg.n_min and cfg.count("noop", 10**7) == cfg.n_max
    assert cfg.count("noop") == cfg.n_max  # not calibrated
    assert cfg.count("io", 1_500.0) == cfg.count("cpu") == cfg.n_slow
    assert cfg.count("noop", 16_000.0, size=100_000) == 500  # ~50 MB per backlog



def test_a_calibration_that_measured_the_workers_start_is_run_again_bigger(monkeypatch, tmp_path):
    """The kafka stack's 2,000-record calibration once had 1 of 4 slots working (1,577 msgs/s: the group's
    join), and sized its noop runs at 0.1 s of its real rate. A run shorter than half of noop_seconds is
    repeated with 10x the backlog; one that took its time, with fewer slots too (rq: one per process), is kept."""
    from queuekit.bench import BenchConfig, calibrate, measure

    cfg, runs = BenchConfig(), []

    def fake(_settings, _stack, _options, envs, _workdir):
        runs.append(len(envs))
        if len(envs) < 20_000:
            return {"rate": 1_577.0, "slots": 1}
        return {"rate": 60_000.0 if len(envs) < 200_000 else 155_000.0, "slots": 4}

    monkeypatch.setattr(measure, "stack_backlog", fake)
    # 2,000 records lasted 1.3 s with one slot, 20,000 0.33 s with four: the join's share still large
    # and 200,000 1.3 s, still under half of noop_seconds: n_max, the last step, is taken whatever it lasts
    assert calibrate(None, cfg, "kafka", tmp_path, lambda _: None) == {"n": 400_000, "rate": 155_000.0, "slots": 4}
    assert runs == [2_000, 20_000, 200_000, 400_000]
    runs.clear()
    monkeypatch.setattr(measure, "stack_backlog", lambda *a: runs.append(1) or {"rate": 900.0, "slots": 4})
    assert calibrate(None, cfg, "celery", tmp_path, lambda _: None)["n"] == 2_000 and runs == [1]  # 2.2 s: kept
    runs.clear()
    monkeypatch.setattr(measure, "stack_backlog", lambda *a: runs.append(1) or {"rate": 447.0, "slots": 2})
    assert calibrate(None, cfg, "rq", tmp_path, lambda _: None)["n"] == 2_000 and runs == [1]
