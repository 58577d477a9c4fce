"""A child process the kit starts, tracks by pid file, and stops.

Each managed component (RabbitMQ, Kafka, Flower) lives in its own private
directory under ``$QUEUEKIT_HOME/run/<name>/`` (mode 0700) with its state, its log,
a pid file and beside it the process's start time and command line: ``stop`` signals only
a process that is still the one the kit started, never whoever got its pid since.
The process runs in a session of its own so ``queuekit up`` can return while it keeps running,
and so ``stop`` can signal the whole tree (``rabbitmq-server`` is a shell script that starts
``beam.smp``).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from queuekit.core.config import private_dir
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_holder(port: int) -> str:
    """Name the process listening on ``port``, for error messages."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({proc.name()})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def wait_ports_free(host: str, ports: dict[str, int], what: str, timeout: float = 30.0) -> None:
    """Poll until nothing listens on ``ports`` any more: a SIGKILLed process's sockets close a moment after
    its memory is released (CI saw a killed RabbitMQ's AMQP port still taken), and a start checks them."""
    taken = lambda: {label: port for label, port in ports.items() if port_open(host, port)}  # noqa: E731
    wait_for(lambda: not taken(), timeout=timeout, what=f"{what}'s ports to be free",
             describe=lambda: ", ".join(f"{label} {port} held by {port_holder(port)}" for label, port in taken().items()))


def ensure_ports_free(host: str, ports: dict[str, int], env_hint: str) -> None:
    """Refuse to start when a port we need is already taken by someone else."""
    for label, port in ports.items():
        if port_open(host, port):
            raise KitError(
                f"port {port} ({label}) on {host} is already in use by {port_holder(port)}",
                f"stop that process, or {env_hint}",
            )


@dataclass
class ManagedProcess:
    """One long-running child process with a pid file and a log in ``directory``."""

    name: str
    directory: Path

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.out"

    @property
    def identity_file(self) -> Path:
        """Beside the pid: the process's start time and command line, so a reused pid is never ours."""
        return self.directory / f"{self.name}.pid.json"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is removed).

        Ours means: the pid file's process exists AND started when the one we spawned did (a pid
        reused by another process has another start time). A pid file from an older kit, without
        the identity beside it, is trusted only if the process runs in our directory (spawn's cwd).
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and self._is_ours(proc):
                return pid
        except psutil.Error:
            pass
        self.pid_file.unlink(missing_ok=True)  # stale: never signal what it names
        self.identity_file.unlink(missing_ok=True)
        return None

    def _is_ours(self, proc: psutil.Process) -> bool:
        try:
            recorded = json.loads(self.identity_file.read_text())
        except (OSError, ValueError):
            return Path(proc.cwd()) == self.directory.resolve()  # legacy pid file: only inside our directory
        # The start time identifies a process for its whole life (an exec, e.g. rabbitmq-server's script
        # becoming the Erlang VM, keeps it; a reused pid does not). The command line is kept for people.
        return recorded.get("pid") == proc.pid and abs(recorded.get("create_time", -1) - proc.create_time()) < 0.05

    def spawn(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              umask: int = -1) -> int:
        """Start ``argv``; ``umask`` (e.g. 0o077) for a server that rewrites its own config file with
        secrets in it (Redis's CONFIG REWRITE, Sentinel's state) at 0644 & ~umask."""
        private_dir(self.directory.parent)  # the run directory: 0700
        private_dir(self.directory)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd or self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives `queuekit up` returning; killable as a group
                umask=umask,
            )
        identity = {"pid": proc.pid, "create_time": psutil.Process(proc.pid).create_time(), "cmdline": argv}
        self.identity_file.write_text(json.dumps(identity))  # first: a pid file is never without it
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def wait_ready(self, check, *, timeout: float, what: str) -> None:
        """Poll ``check`` until it holds; fail at once, with the log's tail, if the process dies."""

        def alive_and_ready() -> bool:
            if self.pid() is None:
                raise KitError(f"{self.name} exited during start-up: {self.log_tail()}", f"see {self.log_file}")
            return check()

        wait_for(alive_and_ready, timeout=timeout, what=what, describe=lambda: f"log: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def tree_pids(self) -> list[int]:
        """The process and everything it spawned (a broker's start script, its VM, port programs)."""
        pid = self.pid()
        return [p.pid for p in _tree(pid)] if pid is not None else []

    def kill(self, what: str) -> None:
        """SIGKILL the whole tree at once (a fault: no shutdown hook runs), then wait until it is gone."""
        for pid in self.tree_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_for(lambda: self.pid() is None, timeout=10, what=f"{what} to die of SIGKILL")

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
        pid = self.pid()
        if pid is None:
            return False
        tree = _tree(pid)
        _signal_all(pid, tree, signal.SIGTERM)
        try:
            wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree),
                     timeout=timeout, what=f"{self.name} to exit after SIGTERM")
        except KitError:
            _signal_all(pid, tree, signal.SIGKILL)
            psutil.wait_procs(tree, timeout=5)
        self.pid_file.unlink(missing_ok=True)
        self.identity_file.unlink(missing_ok=True)
        return True


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _signal_all(pid: int, tree: list[psutil.Process], sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the session we started: the script and everything it spawned
    except OSError:
        pass
    for proc in tree:  # children that left the group (daemons) are still ours
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.1f}s"
