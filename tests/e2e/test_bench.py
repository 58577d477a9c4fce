"""`queuekit bench --quick` on the real brokers: valid JSON, every stack and baseline, non-zero rates.

No speed threshold is asserted here: targets live in the benchmark's output, not in tests.
"""
from __future__ import annotations

import json
import subprocess
import sys

from queuekit.stacks.registry import framework_stacks


def test_quick_bench_produces_complete_json_and_a_chart(kit, tmp_path):
    done = subprocess.run([sys.executable, "-m", "queuekit", "bench", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = tmp_path.glob("bench-*.json")
    result = json.loads(path.read_text())

    assert set(result["baselines"]) == {"rabbitmq", "kafka"}
    for base in result["baselines"].values():
        assert base["rate"]["median"] > 0 and base["publish_rate"]["median"] > 0
    assert set(result["stacks"]) == set(framework_stacks())  # one stack per framework; variants with --stack
    for modes in result["stacks"].values():
        noop = modes["noop"]
        assert noop["rate"]["median"] > 0 and noop["publish_rate"]["median"] > 0
        assert 0 < noop["latency"]["p50_ms"] <= noop["latency"]["p99_ms"]
        assert noop["ratio_to_baseline"] > 0
    assert result["harness"]["us_per_msg_ledger_on"] > result["harness"]["us_per_msg_ledger_off"] > 0
    assert result["machine"]["cores"] and result["machine"]["brokers"]["kafka"]
    assert path.with_suffix(".png").stat().st_size > 0 and path.with_suffix(".svg").stat().st_size > 0
