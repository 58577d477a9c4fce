"""Worker OS processes, one per index, that a scenario can SIGKILL mid-task."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from queuekit.core.config import private_dir
from queuekit.core.errors import KitError
from queuekit.core.log_worker import DIE_WITH_PARENT_ENV
from queuekit.core.waiting import wait_for


@dataclass
class WorkerPool:
    """Starts ``python -m <module> …`` (or any argv) per worker with a ledger and a name in its env.

    Each worker's output goes to ``<log_dir>/<name>.log``; a worker that dies
    while we wait for readiness fails the wait at once with its log's tail.
    """

    prefix: str  # "celery" -> worker names celery-0, celery-1, …
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)
    gone: set[int] = field(default_factory=set)  # indexes killed or stopped on purpose

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def index_of(self, name: str) -> int:
        """The index of the worker that records itself as ``name`` (the inverse of ``name``)."""
        for index in range(len(self.procs)):
            if self.name(index) == name:
                return index
        raise KeyError(f"no worker named {name!r} in this pool (workers: {[self.name(i) for i in range(len(self.procs))]})")

    def spawn(self, argv: list[str], index: int | None = None, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        index = len(self.procs) if index is None else index
        private_dir(self.log_dir)  # worker logs may quote message ids and previews: owner only
        env = {**os.environ, **self.env, **(extra_env or {}), "QUEUEKIT_WORKER_NAME": self.name(index),
               "PYTHONUNBUFFERED": "1",
               DIE_WITH_PARENT_ENV: str(os.getpid())}  # ours: a log worker leaves when we die (core.log_worker)
        with open(self.log_dir / f"{self.name(index)}.log", "ab") as log:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent)
        self.gone.discard(index)
        if index < len(self.procs):
            self.procs[index] = proc
        else:
            self.procs.append(proc)
        return proc

    def python(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def alive(self, index: int) -> bool:
        return self.procs[index].poll() is None

    def log_tail(self, index: int, lines: int = 8) -> str:
        try:
            text = (self.log_dir / f"{self.name(index)}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def wait_ready(self, ready: Callable[[], bool], *, timeout: float, what: str,
                   describe: Callable[[], str] | None = None) -> None:
        def check() -> bool:
            for i, proc in enumerate(self.procs):
                if i not in self.gone and proc.poll() is not None:
                    raise KitError(f"worker {self.name(i)} exited with {proc.returncode}: {self.log_tail(i)}")
            return ready()

        wait_for(check, timeout=timeout, what=what, describe=describe)

    def kill(self, index: int) -> int:
        """SIGKILL: no shutdown hook runs, nothing is acked, the connection just drops."""
        proc = self.procs[index]
        self.gone.add(index)
        for child in _children(proc.pid):
            child.send_signal(signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return proc.pid

    def stop_one(self, index: int, timeout: float = 30.0) -> None:
        """SIGTERM one worker (it finishes or hands back what it holds), SIGKILL after ``timeout``."""
        proc = self.procs[index]
        self.gone.add(index)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def rss_bytes(self, index: int) -> int:
        try:
            root = psutil.Process(self.procs[index].pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM everyone (a warm shutdown: finish or requeue), SIGKILL what is left after ``timeout``."""
        live = [p for p in self.procs if p.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        try:
            wait_for(lambda: all(p.poll() is not None for p in live), timeout=timeout, what="workers to exit")
        except KitError:
            for proc in live:
                if proc.poll() is None:
                    for child in _children(proc.pid):
                        child.kill()
                    proc.kill()
                    proc.wait(10)
        self.procs.clear()
        self.gone.clear()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM me when the harness that started me dies (Linux).

    A harness killed mid-run (Ctrl-C twice, a CI timeout) must not leave workers consuming
    from the shared queues with a stale ledger; they would steal the next run's messages.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: stop() and the pid files remain the only cleanup
        pass


PR_SET_PDEATHSIG = 1


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
