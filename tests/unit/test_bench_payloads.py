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

