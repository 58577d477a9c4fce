"""The StubStack's "worker processes": threads under a name, behind the WorkerPool surface.

A thread cannot be SIGKILLed, so a killed worker's ledger refuses every write
from then on (``WorkerKilled``): an attempt in hand stays unfinished and no
effect lands, as with a process that died. The base Stack's lifecycle
(start, stop, kill_worker, add_worker, …) runs over these unchanged.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from queuekit.core.ledger import Ledger
from queuekit.core.waiting import wait_for

from .pool import WorkerPool

if TYPE_CHECKING:
    from .stub import StubStack


class WorkerKilled(BaseException):
    """Raised into a killed worker thread's ledger writes: a SIGKILLed process writes nothing more."""


class _WorkerLedger(Ledger):
    def __init__(self, path, killed: threading.Event):
        super().__init__(path)
        self.killed = killed

    @contextmanager
    def _write(self) -> Iterator[Any]:
        if self.killed.is_set():
            raise WorkerKilled(self.path)
        with super()._write() as conn:
            yield conn


@dataclass(eq=False)
class ThreadWorker:
    """One stub "worker process": ``concurrency`` threads under one name."""

    name: str
    pid: int  # a stand-in id (the first thread's native id); the ledger records the test process's pid
    ledger: _WorkerLedger
    killed: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def returncode(self) -> int | None:  # as Popen: None while alive
        return -9 if self.killed.is_set() else (0 if self.stopping else None)


@dataclass
class ThreadWorkers(WorkerPool):
    """The WorkerPool surface over threads, so the base class's lifecycle runs unchanged."""

    stack: StubStack | None = None

    @property
    def workers(self) -> list[ThreadWorker]:
        return cast("list[ThreadWorker]", self.procs)  # the same list: the base class appends and indexes it

    def spawn(self, argv: list[str], index: int | None = None, extra_env: dict[str, str] | None = None) -> Any:
        assert self.stack is not None
        index = len(self.procs) if index is None else index
        killed = threading.Event()
        worker = ThreadWorker(self.name(index), 0, _WorkerLedger(self.stack.ledger_path, killed), killed)
        for slot in range(self.stack.options.concurrency):
            thread = threading.Thread(target=self.stack.consume, args=(worker,), name=f"{worker.name}/{slot}", daemon=True)
            thread.start()
            worker.threads.append(thread)
        worker.pid = worker.threads[0].native_id or id(worker)
        self.gone.discard(index)
        self.workers[index:index + 1] = [worker]
        return worker

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.returncode is None]

    def alive(self, index: int) -> bool:
        return self.procs[index].returncode is None

    def log_tail(self, index: int, lines: int = 8) -> str:
        return ""

    def wait_ready(self, ready, *, timeout, what, describe=None) -> None:
        wait_for(ready, timeout=timeout, what=what, describe=describe)

    def kill(self, index: int) -> int:
        assert self.stack is not None
        self.gone.add(index)
        return self.stack.crash(self.workers[index])

    def stop_one(self, index: int, timeout: float = 30.0) -> None:
        assert self.stack is not None
        self.gone.add(index)
        self.stack.leave(self.workers[index], timeout)

    def rss_bytes(self, index: int) -> int:
        return 0  # threads share the test process's memory

    def stop(self, timeout: float = 20.0) -> None:
        assert self.stack is not None
        for worker in self.workers:
            self.stack.leave(worker, timeout)
        self.procs.clear()
        self.gone.clear()
