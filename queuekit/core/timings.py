"""The bench's recorder: completion timestamps kept in memory, written out in batches.

What ``queuekit bench`` measures must cost next to nothing, or the bench
measures itself (three SQLite transactions per message did: the kit's Kafka
stack ran at 0.8% of the raw client). With ``QUEUEKIT_LEDGER_RECORD=timings``
the ledger writes no rows; each worker process appends one tuple per applied
effect to an in-memory deque (thread-safe, no lock), and a daemon thread
moves them every ``FLUSH_S`` to ``<dir>/<pid>.jsonl`` (one JSON array per
line: key, sent_at, started_at, finished_at, the process CPU time, sampled
every ``CPU_EVERY_S``, else null, and the recording thread; times in integer
microseconds), plus once more at exit. ``collect`` adds the pid (from the file
name) to each row: (pid, thread) is the consumer slot that did the work.

Hop timestamps: an adapter that sees its broker's append time and the moment a
message reached it wraps the handling of 1 delivery in ``HOP_EVERY`` (chosen by
its broker position, so the others pay one modulo) in ``delivery(appended)``; the
completion recorded inside writes (key, appended, fetched) to
``<dir>/hops/<pid>.jsonl`` (``read_hops``).

The bare-framework programs (the top-level ``bare`` package) record through the same
class, so the stack and its bare twin pay exactly the same to be measured.
Scenarios never use this: they keep the transactional ledger.
"""
from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

FLUSH_S = 0.2  # how stale the collector's count may be; one small append per interval per process
CPU_EVERY_S = 0.005  # at most one process-CPU sample per this interval (rows in between carry None)
TIMINGS_DIR_ENV = "QUEUEKIT_TIMINGS_DIR"  # where the bare programs record (the stacks use <ledger>.timings)
HOP_EVERY = 50  # an adapter stamps 1 delivery in this many with its append / arrival times

# (appended, fetched) of the delivery being handled, if sampled: a ContextVar, so a handler run through
# asyncio.to_thread (the stream reader) sees what its coroutine set
_delivery: ContextVar[tuple[float | None, float] | None] = ContextVar("queuekit_delivery", default=None)


@contextmanager
def delivery(appended: float | None) -> Iterator[None]:
    """Wrap the handling of a SAMPLED delivery (the adapter decides, by its broker position): the completion
    recorded inside carries ``appended`` (the broker's append time, seconds; None: not known) and now (when
    the adapter turned to the message). An unsampled delivery does not come here at all."""
    token = _delivery.set((appended, time.time()))
    try:
        yield
    finally:
        _delivery.reset(token)


class Timings:
    """One per (directory, process): ``record`` is a deque append; a daemon thread writes batches."""

    _mine: dict[str, Timings] = {}
    _lock = threading.Lock()

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}.jsonl"
        self.rows: deque[tuple] = deque()
        self.hops: deque[tuple] = deque()  # (key, appended, fetched) of sampled deliveries
        self._cpu_due = 0.0  # when the next row samples the process CPU clock
        threading.Thread(target=self._flush_forever, name="timings-flush", daemon=True).start()
        atexit.register(self.flush)

    @classmethod
    def for_dir(cls, directory: str | os.PathLike) -> Timings:
        """This process's recorder for ``directory`` (a fork gets its own file)."""
        key = f"{Path(directory).resolve()}:{os.getpid()}"
        with cls._lock:
            if key not in cls._mine:
                cls._mine[key] = cls(Path(directory))
            return cls._mine[key]

    def record(self, key: str, sent_at: float | None = None, started_at: float | None = None) -> None:
        now = time.time()
        cpu = None
        if now >= self._cpu_due:  # a race between threads costs one extra sample, nothing else
            # process CPU seconds (all threads: the framework's loops, librdkafka's): CPU per message is
            # what a busy shared machine distorts least. Sampled, not per row: the kernel sums every
            # thread's clock for it, which costs more the more threads a process has (a stack worker
            # has twice the bare twin's), so a per-row read would charge the stack for being measured.
            cpu, self._cpu_due = time.process_time(), now + CPU_EVERY_S
        self.rows.append((key, sent_at, started_at, now, cpu, threading.get_ident()))  # thread: the slot
        if (stamps := _delivery.get()) is not None:  # a sampled delivery (1 in HOP_EVERY)
            self.hops.append((key, *stamps))

    def flush(self) -> None:
        batch = []
        while self.rows:
            batch.append(self.rows.popleft())  # popleft vs append: safe across threads without a lock
        if batch:
            with open(self.path, "a") as out:
                out.write("".join(map(_line, batch)))
        hops = []
        while self.hops:
            hops.append(self.hops.popleft())
        if hops:
            (self.path.parent / "hops").mkdir(exist_ok=True)
            with open(self.path.parent / "hops" / self.path.name, "a") as out:
                out.write("".join(json.dumps(hop) + "\n" for hop in hops))

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            self.flush()


def _line(row: tuple) -> str:
    """One row as a JSON array, times in integer microseconds: ~5x cheaper than ``json.dumps`` of the
    floats (their shortest repr dominates), and the writer thread's CPU counts as the worker's."""
    key, sent_at, started_at, finished_at, cpu, thread = row
    return f"[{_string(key)},{_us(sent_at)},{_us(started_at)},{_us(finished_at)},{_us(cpu)},{thread}]\n"


def _us(seconds: float | None) -> str:
    return "null" if seconds is None else str(round(seconds * 1e6))


def _seconds(us: int | None) -> float | None:
    return None if us is None else us / 1e6


_string = json.encoder.encode_basestring_ascii  # the C escaper json.dumps uses


def collect(directory: Path) -> list[tuple]:
    """Every row every process in ``directory`` has written so far: (key, sent_at, started_at, finished_at,
    process_cpu, thread, pid); a torn last line is skipped."""
    rows = []
    for path in sorted(directory.glob("*.jsonl")) if directory.exists() else ():
        pid = int(path.stem)
        for line in path.read_text().splitlines():
            try:
                key, *times, thread = json.loads(line)
                rows.append((key, *map(_seconds, times), thread, pid))
            except ValueError:
                continue  # being written right now: counted on the next look
    return rows


def read_hops(directory: Path) -> dict[str, tuple[float | None, float | None]]:
    """key -> (appended, fetched) of every sampled delivery recorded in ``directory``; a key delivered
    twice (every reader of a stream reads it) keeps its first arrival; a torn last line is skipped."""
    seen: dict[str, tuple[float | None, float | None]] = {}
    for path in (directory / "hops").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                key, appended, fetched = json.loads(line)
            except ValueError:
                continue
            if key not in seen or fetched < (seen[key][1] or fetched):
                seen[key] = (appended, fetched)
    return seen


def count(directory: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in directory.glob("*.jsonl")) if directory.exists() else 0
