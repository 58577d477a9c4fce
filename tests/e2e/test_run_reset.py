"""`queuekit run <stack> B` resets only B's objects: the dead letters of workload A survive it, on real brokers.

One stack per broker family (RabbitMQ with Celery's shared exchanges, Kafka, Redis with Dramatiq's per-queue
keys): a run of signup leaves two dead letters (``--malformed 2``); a run of video then says what its reset
deleted (video's objects only) and signup's dead letters are still on the broker, read back through the
stack's own ``dead_letters``; a reset of signup deletes them and says how many messages went with them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from queuekit.stacks.registry import load_stack


def queuekit(*args: str) -> str:
    done = subprocess.run([str(Path(sys.executable).parent / "queuekit"), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, f"queuekit {' '.join(args)}: {done.stdout[-1500:]}{done.stderr[-2000:]}"
    return done.stdout + done.stderr


@pytest.mark.parametrize("stack", ["celery", "kafka", "dramatiq_redis"])
def test_a_run_of_one_workload_keeps_another_workloads_dead_letters(kit, stack, tmp_path):
    instance = load_stack(stack)(kit, tmp_path / "ledger.db")
    try:
        queuekit("run", stack, "signup", "-n", "3", "--malformed", "2", "--workers", "1", "--timeout", "120")
        assert len(instance.dead_letters("signup")) == 2, "the signup run left no 2 dead letters to keep"

        out = queuekit("run", stack, "video", "-n", "2", "--workers", "1", "--timeout", "120")
        resets = [line for line in out.splitlines() if f"reset {stack}/video" in line]
        assert resets, f"the video run said nothing of its reset:\n{out[-2000:]}"
        assert not [line for line in resets if "signup" in line], f"the video run's reset names signup:\n{resets}"
        survivors = instance.dead_letters("signup")
        assert len(survivors) == 2, f"a run of video deleted signup's dead letters: {len(survivors)} left"

        purged = instance.reset(["signup"])
        assert sum(purged.dead_letters.values()) == 2, purged.dead_letters
        assert any("deleted dead letters" in line and "2 messages" in line for line in purged.lines("x")), \
            purged.lines("x")
        assert instance.dead_letters("signup") == []
    finally:
        instance.stop()
