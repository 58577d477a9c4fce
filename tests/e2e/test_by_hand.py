"""docs/by-hand.md ("Run it yourself"), run as written: each stack's own worker command, a message sent with the
framework's own tool (``celery call``, an actor's ``.send()``, kcat), one effect in the ledger; and
``queuekit worker`` running the same command in the foreground until SIGTERM / Ctrl-C."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from readme_blocks import blocks, shell_env

from queuekit.core.ledger import Ledger
from queuekit.core.waiting import wait_for

STACKS = ("celery", "dramatiq", "kafka")
KEY = "by-hand-1"  # the idempotency key of the README's message


def _as_written(script: str, kit) -> str:
    # The README shows the default Kafka port; this kit may run on shifted ports (QUEUEKIT_PORT_OFFSET).
    return script.replace("127.0.0.1:9092", kit.kafka_bootstrap)


def _effects(path) -> list:
    if not path.exists():
        return []
    return [e for e in Ledger(path).effects(service="signup") if e.key == KEY]


@pytest.mark.parametrize("stack", STACKS)
def test_readme_commands_run_as_written(kit, stack, tmp_path):
    if stack == "kafka" and not shutil.which("kcat"):
        pytest.fail("kcat is missing: make test installs it (apt-get install -y kcat)")
    readme = blocks()
    env = shell_env()
    log = (tmp_path / "worker.log").open("w")
    # A person runs the block's lines in order and sends once the worker runs: the declaring line
    # (``queuekit worker ... --print``, which switches a quorum queue a variant left back to classic)
    # has finished before anything is sent. Run it first, so the send never races the switch.
    for line in readme[f"{stack} worker"].splitlines():
        if line.startswith("queuekit worker"):
            done = subprocess.run(["bash", "-ec", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
    worker = subprocess.Popen(["bash", "-ec", readme["message"] + _as_written(readme[f"{stack} worker"], kit)],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        sent = subprocess.run(["bash", "-ec", readme["message"] + _as_written(readme[f"{stack} send"], kit)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr[-2000:]
        ledger = tmp_path / f"by-hand-{stack}.sqlite"  # each stack its own ledger, as the page says
        wait_for(lambda: _effects(ledger), timeout=90,
                 what=f"the {stack} worker started as the README says to record signup {KEY} in {ledger}: "
                      + (tmp_path / "worker.log").read_text()[-1500:])
        assert len(_effects(ledger)) == 1
    finally:
        os.killpg(worker.pid, signal.SIGTERM)  # what Ctrl-C in that terminal would do: a warm shutdown
        worker.wait(60)
        log.close()


def test_worker_command_prints_what_the_readme_shows(kit):
    """The README's by-hand worker lines are what ``queuekit worker --print`` prints today."""
    readme = blocks()
    for stack in STACKS:
        printed = subprocess.run([sys.executable, "-m", "queuekit", "worker", stack, "--workload", "signup", "--print"],
                                 capture_output=True, text=True, timeout=120, env=shell_env())
        assert printed.returncode == 0, printed.stderr
        command = readme[f"{stack} worker"].strip().splitlines()[-1]
        assert command in printed.stdout.splitlines(), (stack, printed.stdout)


def test_queuekit_worker_runs_in_the_foreground_and_stops_on_sigint(kit, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "queuekit", "worker", "dramatiq", "--workload", "signup",
                             "--workers", "2", "--ledger", str(ledger)],
                            env=shell_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # Ctrl-C as in a terminal, even when pytest itself runs in a background job
                            # (whose children inherit SIGINT ignored, and Python then never installs its handler)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), start_new_session=True)
    lines: list[str] = []
    try:
        wait_for(lambda: _ready(proc, lines), timeout=90, what="two Dramatiq worker processes to start")
        readme = blocks()
        sent = subprocess.run(["bash", "-ec", readme["message"] + readme["dramatiq send"]], cwd=tmp_path,
                              env=shell_env(QUEUEKIT_LEDGER=str(ledger)), capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: _effects(ledger), timeout=60, what=f"signup {KEY} recorded: {''.join(lines)[-1500:]}")
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # never leave Dramatiq workers consuming for later tests
            proc.communicate(timeout=30)
            raise
        lines.append(out)
    text = "".join(lines)
    assert "export QUEUEKIT_LEDGER=" in text and "dramatiq dramatiq_app.actors --processes 2" in text
    assert proc.returncode == 0, text[-2000:]
    assert "dramatiq-by-hand exited with 0" in text


def _ready(proc, lines: list[str]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"queuekit worker exited: {proc.stdout.read()}")
    line = proc.stdout.readline()  # blocks until a line: the worker prints as it starts
    lines.append(line)
    return sum("Worker process is ready" in line_ for line_ in lines) >= 2


@pytest.mark.parametrize("stack", STACKS)
def test_a_worker_started_by_hand_without_a_ledger_refuses_to_start(kit, stack, tmp_path):
    """Not up and healthy, dead-lettering every message: it exits at once, naming QUEUEKIT_LEDGER."""
    command = blocks()[f"{stack} worker"].strip().splitlines()[-1]
    env = shell_env()
    env.pop("QUEUEKIT_LEDGER", None)
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode != 0
    assert "QUEUEKIT_LEDGER" in done.stdout + done.stderr


def test_a_stack_without_by_hand_module_is_run_as_the_kit_runs_it(kit):
    """Every registered stack has `queuekit worker`: without a declared by_hand module, its declare + python -m worker."""
    from queuekit.stacks.registry import load_stack, stack_names

    for stack in stack_names():
        printed = subprocess.run([sys.executable, "-m", "queuekit", "worker", stack, "--workload", "signup", "--print"],
                                 capture_output=True, text=True, timeout=120, env=shell_env())
        assert printed.returncode == 0, (stack, printed.stderr[-1500:])
        assert "export QUEUEKIT_LEDGER=" in printed.stdout
        if load_stack(stack).by_hand is None:  # no by_hand module declared: as the kit runs it
            assert f"python -m {load_stack(stack).worker_module} signup" in printed.stdout, stack
        # leave no queue of this stack's type behind (quorum after classic): the next test declares its own
        load_stack(stack)(kit, Path("unused.db")).purge()


def test_queuekit_effects_shows_what_took_effect_and_what_was_dead_lettered_by_hand(kit, tmp_path):
    """The README's Dramatiq worker with its own ledger, one good and one malformed message sent by hand:
    ``queuekit effects`` shows the effect and the dead letter with its reason, no sqlite3 needed."""
    readme = blocks()
    ledger = tmp_path / "by-hand-dramatiq.sqlite"  # what the page's block exports
    env = shell_env(QUEUEKIT_LEDGER=str(ledger))
    declare = next(line for line in readme["dramatiq worker"].splitlines() if line.startswith("queuekit worker"))
    declared = subprocess.run(["bash", "-ec", declare], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
    assert declared.returncode == 0, declared.stderr[-2000:]
    worker = subprocess.Popen(["bash", "-ec", readme["dramatiq worker"]], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    poison = f"not an envelope {uuid.uuid4().hex[:8]}"
    try:
        for script in (readme["message"] + readme["dramatiq send"],
                       f"python -c 'from dramatiq_app.actors import signup; signup.send(\"{poison}\")'"):
            sent = subprocess.run(["bash", "-ec", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=60)
            assert sent.returncode == 0, sent.stderr[-2000:]

        def shown() -> str | None:
            done = subprocess.run([sys.executable, "-m", "queuekit", "effects", "--stack", "dramatiq", "--workload",
                                   "signup", "--ledger", str(ledger)], env=env, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, done.stderr[-2000:]
            return done.stdout if KEY in done.stdout and poison in done.stdout else None

        out = wait_for(shown, timeout=90, what=f"queuekit effects to show effect {KEY} and the dead letter {poison}")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
    lines = out.splitlines()
    assert "signup/signup: 1 effect(s), 0 key(s) run more than once" in lines, out
    assert any(line.strip().startswith(f"{KEY}  by dramatiq") for line in lines), out  # its key and worker
    assert any(poison in line and "reason: " in line and "not JSON" in line for line in lines), out
