"""No secret on a command line: what ``ps`` shows every user of the machine, read from the running processes.

The tool ``queuekit tool rabbitmqadmin`` runs, the brokers, Flower and the workers of the RabbitMQ stacks
(the ones that hold the broker's password) are looked at while they run; their argv never holds a password.
The compose path gets the credentials through an env file only its owner can read.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from queuekit.brokers import docker, tools
from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for

RABBIT_STACKS = ("celery", "dramatiq", "rabbitmq_stream")


def secrets_of(kit: Settings) -> list[str]:
    return [p for p in (kit.rabbit_password, kit.flower_password, kit.mgmt_auth[1]) if p]


def test_tool_rabbitmqadmin_runs_with_its_credentials_in_a_private_file_not_on_its_argv(kit):
    call = tools.invocation(kit, "rabbitmqadmin", ("list", "vhosts", "name"))
    proc = subprocess.Popen(call.argv, env=call.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # the child may still be inside exec when Popen returns (empty cmdline): poll until ps shows its argv
        running = wait_for(lambda: psutil.Process(proc.pid).cmdline(), timeout=10, interval=0.001, max_interval=0.001,
                           what="the running rabbitmqadmin's command line")
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # the file carried host, port and credentials: it authenticated
    assert "--config" in running and running[-3:] == ["list", "vhosts", "name"], running
    assert not [s for s in secrets_of(kit) if s in " ".join(running) or s in call.shown], "a password on argv"
    assert "/" in out.split()
    config = running[running.index("--config") + 1]
    assert oct(os.stat(config).st_mode & 0o777) == "0o600"
    assert not call.argv[0].startswith(str(kit.run_dir)), "a script fetched into the kit's run directory"


def test_no_kit_process_has_a_password_on_its_command_line(kit, fresh_stack):
    workers = []
    for name in RABBIT_STACKS:
        stack = fresh_stack(name)
        stack.start(["signup"])
        workers += stack.worker_pids()
    seen = {}
    for proc in psutil.process_iter(["pid", "cmdline", "username"]):
        if proc.info["username"] == psutil.Process().username():
            seen[proc.info["pid"]] = " ".join(proc.info["cmdline"] or [])
    assert set(workers) <= set(seen), "the workers were not running when looked at"
    leaks = {pid: line[:200] for pid, line in seen.items() for s in secrets_of(kit) if s in line}
    assert not leaks, leaks


def test_the_compose_path_passes_the_installs_credentials_in_a_private_env_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path / "home"))
    s = Settings.from_env()
    argv = docker.compose_command(s)
    env_file = argv[argv.index("--env-file") + 1]
    assert not [p for p in (s.rabbit_password, s.flower_password) if p in " ".join(argv)]
    assert oct(os.stat(env_file).st_mode & 0o777) == "0o600"
    lines = dict(line.split("=", 1) for line in Path(env_file).read_text().splitlines())
    assert lines["QUEUEKIT_RABBIT_PASSWORD"] == s.rabbit_password != "queuekit"
    assert lines["QUEUEKIT_FLOWER_PASSWORD"] == s.flower_password


@pytest.mark.parametrize("name", ["rabbitmqadmin"])
def test_tool_refuses_with_one_line_when_the_shipped_script_is_missing(kit, name, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(KitError, match="apt-get install -y rabbitmq-server"):
        tools.invocation(kit, name, ("list", "queues"))
