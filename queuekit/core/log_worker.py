"""The process around a log stack's consumers: one thread per group member, signals, the orphan watch.

Shared by every stack whose worker is "N members, each a client of its own
polling in a thread" (``kafka_app``, ``kafka_share_app``; the Redis Streams
stack next). What a member does is its app's business (``Member.open`` makes
its clients, ``Member.loop`` consumes until the stop flag is set and closes
them); what the process does around the members is decided here, once:

- SIGTERM / SIGINT set the stop flag: each member finishes the record in hand,
  then its loop closes its clients (commits what it stored, leaves the group).
- A member that raises stops the whole process (exit 1), after ``abandon``
  closed its clients without committing the record in hand: a half-alive
  worker whose member is gone would keep its partitions (or its share) idle.
- The orphan watch: only for workers the harness started (the worker pool sets
  ``QUEUEKIT_DIE_WITH_PARENT=<its own pid>``; "1" means "the parent I started
  under"). The pid, not a flag: a worker whose parent died before the worker's
  interpreter was up would otherwise take its new parent (init) for the
  harness and never notice. When the harness dies, its workers leave
  their groups instead of consuming the next run's records with a stale
  ledger; a log line says so. A worker started by hand (under nohup, setsid or
  a double-forking supervisor) has no such marker and keeps running when its
  parent exits, as Celery and Dramatiq workers do.

Worker-side: imports nothing of the driver (the "Worker processes do not
import the driver" contract covers the app workers that import this).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

DIE_WITH_PARENT_ENV = "QUEUEKIT_DIE_WITH_PARENT"  # the harness's pid: set by its worker pool only
WATCH_S = 1.0  # how often the main thread looks at its parent (and wakes on the stop flag at once)

S = TypeVar("S")


@dataclass(frozen=True)
class Member(Generic[S]):
    """One group member: a thread named ``name`` that opens its clients, consumes, and closes them."""

    name: str  # the client id: also the thread's name in every log line
    open: Callable[[], S]  # make the member's clients (a consumer, its producer, ...)
    loop: Callable[[S, threading.Event], None]  # consume until the event is set; close the clients on the way out
    abandon: Callable[[S], None]  # after a crash: close without committing the record in hand (it is delivered again)


def parent_to_watch() -> int | None:
    """The pid this worker must not outlive, if the harness started it (None: started by hand)."""
    raw = os.environ.get(DIE_WITH_PARENT_ENV, "")
    if raw == "1":
        return os.getppid()
    return int(raw) if raw.isdigit() else None


def orphaned(parent: int | None) -> bool:
    """The watched parent is no longer ours: it exited and we were re-parented (to init or a subreaper)."""
    return parent is not None and os.getppid() != parent


def run_members(members: Sequence[Member[Any]], log: logging.Logger) -> int:
    """Run every member in its own thread until a signal, a crash or (harness workers only) the parent's death.

    Returns the process's exit code: 1 when a member crashed, else 0."""
    stop, crashed = threading.Event(), threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def run(member: Member[Any]) -> None:
        clients = None
        try:
            clients = member.open()
            member.loop(clients, stop)
        except Exception:  # a member that cannot go on (or start) takes the process down with it
            log.exception("%s crashed", member.name)
            crashed.set()
            stop.set()
            if clients is not None:
                member.abandon(clients)

    threads = [threading.Thread(target=run, args=(m,), name=m.name) for m in members]
    for thread in threads:
        thread.start()
    parent = parent_to_watch()
    while not stop.wait(WATCH_S):  # a signal handler or a crashed member sets it
        if orphaned(parent):
            log.warning("parent process %s exited: stopping (this worker was started by the harness, %s=%s); "
                        "members leave their groups", parent, DIE_WITH_PARENT_ENV, parent)
            stop.set()
    for thread in threads:
        thread.join()
    return 1 if crashed.is_set() else 0
