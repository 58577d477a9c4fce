"""The orphan watch of the log workers (``queuekit.core.log_worker``), on the real Kafka broker.

A Kafka worker started by hand through a parent that exits at once (what ``nohup cmd &``, ``setsid`` or
a double-forking supervisor do) keeps consuming; one carrying the harness pool's marker
(``QUEUEKIT_DIE_WITH_PARENT=<the parent's pid>``) leaves when that parent is gone, and says so in its log."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
from helpers import signups

from queuekit.core.ledger import Ledger
from queuekit.core.log_worker import DIE_WITH_PARENT_ENV
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for

OPTIONS = StackOptions(workers=1, partitions=1)


def _start_through_a_parent_that_exits(tmp_path, ledger: Ledger, marker: bool) -> psutil.Process:
    """``bash -c 'python -m kafka_app.worker signup & echo $!'``: bash prints the worker's pid and exits."""
    env = {k: v for k, v in os.environ.items() if k != DIE_WITH_PARENT_ENV}
    env.update(QUEUEKIT_LEDGER=str(ledger.path), QUEUEKIT_WORKER_NAME="kafka-by-hand", PYTHONUNBUFFERED="1")
    log = tmp_path / "worker.log"
    # As the harness's pool does: the marker names the parent (bash, which exits before the worker is up).
    mark = f"export {DIE_WITH_PARENT_ENV}=$$; " if marker else ""
    script = f'{mark}{sys.executable} -m kafka_app.worker signup >"{log}" 2>&1 </dev/null & echo $!'
    parent = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=True)
    worker = psutil.Process(int(parent.stdout.strip()))  # its parent (bash) has exited: the worker is an orphan now
    assert worker.ppid() != os.getpid()
    return worker


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stop(proc: psutil.Process) -> None:
    if not _gone(proc):
        proc.send_signal(signal.SIGTERM)
        try:
            wait_for(lambda: _gone(proc), timeout=60, what=f"worker {proc.pid} to leave on SIGTERM")
        except Exception:
            proc.kill()
            raise


def test_a_worker_started_by_hand_keeps_consuming_after_its_parent_exits(fresh_stack, ledger, tmp_path):
    stack = fresh_stack("kafka")
    stack.prepare(["signup"], OPTIONS)  # the topics, and a publisher; no harness worker
    worker = _start_through_a_parent_that_exits(tmp_path, ledger, marker=False)
    try:
        [env] = signups(1, seed=23)
        assert stack.publish("signup", [env]).confirmed == 1
        # Group join takes seconds, far longer than the watch's 1 s period: had it fired, nothing is consumed.
        wait_for(lambda: ledger.effects(service="signup"), timeout=90,
                 what=f"the orphaned by-hand worker to handle a signup: {(tmp_path / 'worker.log').read_text()[-1500:]}")
        assert [e.key for e in ledger.effects(service="signup")] == [env.body.idempotency_key]
        assert not _gone(worker), (tmp_path / "worker.log").read_text()[-1500:]
        assert "parent process" not in (tmp_path / "worker.log").read_text()
    finally:
        _stop(worker)


def test_a_harness_worker_leaves_when_its_parent_exits_and_says_why(fresh_stack, ledger, tmp_path):
    stack = fresh_stack("kafka")
    stack.prepare(["signup"], OPTIONS)
    worker = _start_through_a_parent_that_exits(tmp_path, ledger, marker=True)
    try:
        wait_for(lambda: _gone(worker), timeout=60,
                 what=f"the harness-marked worker {worker.pid} to exit after its parent did")
    finally:
        if not _gone(worker):
            worker.kill()
    text = (tmp_path / "worker.log").read_text()
    assert "parent process" in text and f"{DIE_WITH_PARENT_ENV}=" in text, text[-1500:]
