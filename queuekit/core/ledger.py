"""The ledger: one SQLite file every worker process writes what it did to.

Scenarios decide what happened (lost, duplicated, reordered, retried) by
reading the ledger, never by trusting a framework's counters.

Tables:
  attempts     one row per handler invocation; ``outcome`` stays NULL while it
               runs (and forever if the worker was SIGKILLed), then 'ok' |
               'duplicate' | 'error'
  effects      one row per applied effect; deliberately NO unique constraint, so
               duplicates are observable when the idempotency guard is off
  idempotency  (service, key) claimed by the first effect: the guard
  outbox       signup emails, committed in the same transaction as the key

Concurrency: WAL mode (readers never block the writer), ``synchronous=NORMAL``
(durable across process crashes, which is what scenarios inflict), a 30 s busy
timeout, and every write transaction starts with ``BEGIN IMMEDIATE`` so writers
queue for the lock instead of failing to upgrade. One connection per process
and thread, opened lazily and reopened after ``fork``: SQLite connections must
not cross a fork, and Dramatiq/Kafka workers run handlers in threads. A
``<ledger>.lock`` file beside the database serialises only the first open
(switching a new file to WAL), not the writes.

Path: ``Ledger(path)``, or ``Ledger()`` reads ``QUEUEKIT_LEDGER`` (how worker
processes started by a stack find the file).
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .timings import Timings

LEDGER_ENV = "QUEUEKIT_LEDGER"
RECORD_ENV = "QUEUEKIT_LEDGER_RECORD"
TIMINGS = "timings"  # RECORD_ENV value: the bench's in-memory recorder instead of SQLite rows
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, workload TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL,
    message_id TEXT NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL, pid INTEGER NOT NULL,
    started_at REAL NOT NULL, finished_at REAL,
    outcome TEXT,  -- 'ok' | 'duplicate' | 'error'; NULL while running or if the worker died
    error TEXT, seq INTEGER, user_id INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_by_key ON attempts (service, key);
CREATE TABLE IF NOT EXISTS effects (  -- no UNIQUE: duplicates must be countable
    id INTEGER PRIMARY KEY, workload TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL,
    message_id TEXT NOT NULL, worker TEXT NOT NULL, pid INTEGER NOT NULL, seq INTEGER, user_id INTEGER,
    sent_at REAL, started_at REAL, finished_at REAL NOT NULL, payload TEXT NOT NULL  -- JSON
);
CREATE INDEX IF NOT EXISTS effects_by_key ON effects (service, key);
CREATE TABLE IF NOT EXISTS idempotency (service TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (service, key));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, service TEXT NOT NULL, key TEXT NOT NULL,
    recipient TEXT NOT NULL, subject TEXT NOT NULL, created_at REAL NOT NULL
);
"""
TABLES = ("attempts", "effects", "idempotency", "outbox")
EFFECT_COLUMNS = (
    "id, workload, service, key, message_id, worker, pid, seq, user_id, sent_at, started_at, finished_at, payload"
)
ATTEMPT_COLUMNS = (
    "id, workload, service, key, message_id, attempt, worker, pid, started_at, finished_at, outcome, error,"
    " seq, user_id"
)
_forks = [0]  # bumped in every forked child
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))
_inherited: list[sqlite3.Connection] = []  # connections from before a fork: never used, never closed


@dataclass(frozen=True)
class AttemptTicket:
    id: int  # attempts.id, to pass to finish_attempt
    number: int  # 1 for the first attempt at (service, key), 2 for the next...


@dataclass(frozen=True)
class Effect:  # fields in EFFECT_COLUMNS order
    id: int
    workload: str
    service: str
    key: str
    message_id: str
    worker: str
    pid: int
    seq: int | None
    user_id: int | None
    sent_at: float | None
    started_at: float | None
    finished_at: float
    payload: Any


@dataclass(frozen=True)
class Attempt:  # fields in ATTEMPT_COLUMNS order
    id: int
    workload: str
    service: str
    key: str
    message_id: str
    attempt: int
    worker: str
    pid: int
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None
    seq: int | None
    user_id: int | None


class TransactionOutbox:
    """The signup ``Outbox`` port, bound to an open ledger transaction."""

    def __init__(self, conn: sqlite3.Connection, service: str, key: str):
        self._conn, self._service, self._key = conn, service, key

    def add(self, recipient: str, subject: str) -> None:
        self._conn.execute(
            "INSERT INTO outbox (service, key, recipient, subject, created_at) VALUES (?, ?, ?, ?, ?)",
            (self._service, self._key, recipient, subject, time.time()),
        )


class _DiscardOutbox:
    """The outbox when the ledger does not record (bench): staging runs, nothing is kept."""

    def add(self, recipient: str, subject: str) -> None:
        pass


_DISCARD = _DiscardOutbox()
_UNRECORDED = AttemptTicket(id=0, number=1)  # every attempt when nothing is recorded (one object, not one per message)


class Ledger:
    """The shared store. Cheap to construct and to hand to another process (it holds only the path)."""

    def __init__(self, path: str | os.PathLike | None = None):
        path = path or os.environ.get(LEDGER_ENV)
        if not path:
            raise ValueError(f"no ledger path: pass one or set {LEDGER_ENV}")
        self.path = Path(path).resolve()  # absolute: workers may run from another cwd
        self._local = threading.local()
        # QUEUEKIT_LEDGER_RECORD (bench only; attempts are all numbered 1 then and there is no
        # idempotency guard, so fail-times faults never succeed): "0" workers write nothing;
        # "timings": each effect's timestamps go to an in-memory recorder (core/timings.py) that
        # writes batches to <ledger>.timings/ — what ``queuekit bench`` measures with.
        record = os.environ.get(RECORD_ENV, "1")
        self.recording = record not in ("0", TIMINGS)
        self.timings_dir = Path(f"{self.path}.timings") if record == TIMINGS else None
        self._timings: tuple[int, Timings] | None = None  # (fork count, recorder): a forked child makes its own

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        Ledger.__init__(self, state["path"])

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # -- connection ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "conn", None) is not None:
                _inherited.append(local.conn)  # closing it in the child could disturb the parent's locks
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)  # we issue BEGIN ourselves
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # per connection; WAL + NORMAL survives process crashes
        # Switching a new file to WAL ignores the busy timeout, so processes opening
        # the ledger at once take turns on a lock file; WAL then persists in the file.
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front (waits, never deadlocks)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (it reopens on next use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = self._local.pid = None

    def reset(self) -> None:
        """Empty every table (between scenario runs); the file and its schema stay."""
        with self._write() as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")

    # -- write side (workers) ----------------------------------------------------
    def record_attempt(
        self,
        *,
        workload: str,
        service: str,
        key: str,
        message_id: str,
        worker: str,
        seq: int | None = None,
        user_id: int | None = None,
        started_at: float | None = None,
    ) -> AttemptTicket:
        """Record that a handler starts on (service, key); its number counts earlier attempts at that key."""
        if not self.recording:
            return _UNRECORDED
        with self._write() as conn:
            # numbering and insert in one locked transaction: two deliveries never get the same number
            cur = conn.execute(
                "INSERT INTO attempts"
                " (workload, service, key, message_id, attempt, worker, pid, started_at, seq, user_id)"
                " SELECT ?, ?, ?, ?, COUNT(*) + 1, ?, ?, ?, ?, ? FROM attempts WHERE service = ? AND key = ?",
                (workload, service, key, message_id, worker, os.getpid(), started_at or time.time(), seq, user_id,
                 service, key),
            )
            (number,) = conn.execute("SELECT attempt FROM attempts WHERE id = ?", (cur.lastrowid,)).fetchone()
        assert cur.lastrowid is not None  # an INSERT that succeeded has a row id
        return AttemptTicket(id=cur.lastrowid, number=number)

    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None = None) -> None:
        """Close an attempt: ``outcome`` is 'ok', 'duplicate' or 'error'."""
        if outcome not in ("ok", "duplicate", "error"):
            raise ValueError(f"unknown outcome {outcome!r}")
        if not self.recording:
            return
        with self._write() as conn:
            conn.execute(
                "UPDATE attempts SET finished_at = ?, outcome = ?, error = ? WHERE id = ?",
                (time.time(), outcome, error, attempt_id),
            )

    def apply_effect(
        self,
        service: str,
        key: str,
        *,
        workload: str,
        message_id: str,
        worker: str,
        payload: Any,
        seq: int | None = None,
        user_id: int | None = None,
        sent_at: float | None = None,
        started_at: float | None = None,
        guard: bool = True,
        on_claim: Callable[[TransactionOutbox], Any] | None = None,
    ) -> bool:
        """Apply one effect at most once per (service, key) when ``guard``; True if it was applied.

        In ONE transaction: claim the key, write the effect row, run ``on_claim``
        (signup stages its email there). If anything raises, all of it rolls
        back and the key stays free for the retry. With ``guard=False`` every
        call applies: that is the at-least-once baseline scenarios compare to.
        """
        if not self.recording:
            if self.timings_dir is not None:
                self._recorder().record(key, sent_at, started_at)
            if on_claim is not None:
                on_claim(_DISCARD)  # type: ignore[arg-type]  # the handler's staging still runs; nothing is kept
            return True
        with self._write() as conn:
            if guard:
                # the idempotency decision: only the first claim of (service, key) inserts a row
                claimed = conn.execute(
                    "INSERT OR IGNORE INTO idempotency (service, key) VALUES (?, ?)", (service, key)
                ).rowcount == 1
                if not claimed:
                    return False  # already applied by an earlier delivery: commit nothing new
            conn.execute(
                "INSERT INTO effects (workload, service, key, message_id, worker, pid, seq, user_id,"
                " sent_at, started_at, finished_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workload, service, key, message_id, worker, os.getpid(), seq, user_id,
                 sent_at, started_at, time.time(), json.dumps(payload)),
            )
            if on_claim is not None:
                on_claim(TransactionOutbox(conn, service, key))  # commits with the key, or not at all
        return True

    def _recorder(self) -> Timings:
        if self._timings is None or self._timings[0] != _forks[0]:  # no getpid() per message: a counter
            self._timings = (_forks[0], Timings.for_dir(self.timings_dir or ""))
        return self._timings[1]

    # -- read side (scenarios) -------------------------------------------------
    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def effects(self, workload: str | None = None, service: str | None = None) -> list[Effect]:
        """Effects in the order they were applied (effects.id), optionally filtered."""
        rows = self._rows(
            f"SELECT {EFFECT_COLUMNS} FROM effects"
            " WHERE (?1 IS NULL OR workload = ?1) AND (?2 IS NULL OR service = ?2) ORDER BY id",
            (workload, service),
        )
        return [replace(Effect(*row), payload=json.loads(row[-1])) for row in rows]  # the payload: last column, JSON

    def effect_payload(self, service: str, key: str) -> Any | None:
        """The payload of the first effect applied for (service, key), or None."""
        row = self._conn().execute(
            "SELECT payload FROM effects WHERE service = ? AND key = ? ORDER BY id LIMIT 1", (service, key)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def effect_counts(self) -> dict[str, int]:
        """Number of effects per service."""
        return dict(self._rows("SELECT service, COUNT(*) FROM effects GROUP BY service ORDER BY service"))

    def duplicates(self, service: str) -> dict[str, int]:
        """Keys of ``service`` with more than one effect -> how many effects each has."""
        return dict(self._rows(
            "SELECT key, COUNT(*) FROM effects WHERE service = ? GROUP BY key HAVING COUNT(*) > 1 ORDER BY key",
            (service,),
        ))

    def attempts(self, service: str | None = None) -> list[Attempt]:
        """Every attempt (at ``service``), oldest first."""
        where, params = ("WHERE service = ?", (service,)) if service else ("", ())
        return [Attempt(*row) for row in self._rows(f"SELECT {ATTEMPT_COLUMNS} FROM attempts {where} ORDER BY id", params)]

    def attempts_for(self, service: str, key: str) -> list[Attempt]:
        """Every attempt at (service, key), first first."""
        rows = self._rows(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE service = ? AND key = ? ORDER BY id", (service, key)
        )
        return [Attempt(*row) for row in rows]

    def order_violations(self, service: str) -> int:
        """Effects applied after an effect with a higher seq for the same user (per-key reordering).

        Walks each user's effects in applied order (effects.id) and counts those
        whose seq is lower than the highest seq already applied. A redelivered
        duplicate (equal seq) is not a violation.
        """
        (count,) = self._conn().execute(
            "SELECT COUNT(*) FROM ("
            " SELECT seq, MAX(seq) OVER (PARTITION BY user_id ORDER BY id"
            "   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS highest_before"
            " FROM effects WHERE service = ? AND seq IS NOT NULL"
            ") WHERE seq < highest_before",
            (service,),
        ).fetchone()
        return count

    def in_flight_max(self, service: str | None = None, worker: str | None = None) -> int:
        """Most attempts running at the same moment (unfinished ones count as still running)."""
        rows = self._rows(
            "SELECT started_at, finished_at FROM attempts WHERE (?1 IS NULL OR service = ?1)"
            " AND (?2 IS NULL OR worker = ?2)",
            (service, worker),
        )
        events = sorted([(start, 1) for start, _ in rows] + [(end, -1) for _, end in rows if end is not None])
        running = highest = 0
        for _, step in events:  # ends sort before starts at equal times: touching intervals do not overlap
            running += step
            highest = max(highest, running)
        return highest

    def count(self, table: str, **equals: Any) -> int:
        """Rows of ``table`` whose columns equal the given values, e.g. count("attempts", outcome="error")."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        columns = {row[1] for row in self._rows(f"PRAGMA table_info({table})")}
        unknown = set(equals) - columns
        if unknown:
            raise ValueError(f"unknown column(s) {sorted(unknown)} in {table}")
        where = " AND ".join(f"{name} IS ?" for name in equals) or "1"
        (n,) = self._conn().execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", tuple(equals.values())).fetchone()
        return n

    def outbox_rows(self, service: str | None = None) -> list[dict]:
        """Staged emails, oldest first."""
        rows = self._rows(
            "SELECT id, service, key, recipient, subject, created_at FROM outbox"
            " WHERE (?1 IS NULL OR service = ?1) ORDER BY id",
            (service,),
        )
        names = ("id", "service", "key", "recipient", "subject", "created_at")
        return [dict(zip(names, row)) for row in rows]

    def ledger_stats(self) -> dict[str, Any]:
        """Row counts per table, WAL size and journal mode: a quick health view."""
        stats: dict[str, Any] = {"path": str(self.path)}
        for table in TABLES:
            stats[table] = self.count(table)
        wal = Path(f"{self.path}-wal")
        stats["wal_bytes"] = wal.stat().st_size if wal.exists() else 0
        stats["journal_mode"] = self._conn().execute("PRAGMA journal_mode").fetchone()[0]
        return stats
