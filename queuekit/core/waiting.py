"""Deadline-bound polling: the kit's only way to wait for something to happen.

A bare ``sleep`` never stands in for a readiness check. ``wait_for`` polls a
condition until it holds or the deadline passes, and then fails saying what
it was waiting for and what it saw last.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from queuekit.core.errors import KitError, WaitTimeout

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    max_interval: float = 0.5,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns a truthy value, and return that value.

    ``what`` names the awaited state ("RabbitMQ accepting AMQP on 127.0.0.1:5672").
    ``describe`` (optional) is called on timeout to say what was observed instead.
    A ``KitError`` raised by ``condition`` is fatal and propagates at once (the
    process died, say); any other exception counts as "not yet" and the last
    one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except KitError:
            raise
        except Exception as exc:  # not ready yet; remember why
            last_error = exc
        if time.monotonic() >= deadline:
            seen = describe() if describe else (f"last error: {last_error}" if last_error else "condition stayed false")
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what} ({seen})")
        time.sleep(interval)  # the poll interval, not a readiness guess
        interval = min(interval * 1.5, max_interval)


def wait_until_still(observe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, still: float,
                     interval: float = 0.25) -> T:
    """Poll ``observe()`` until ``done`` holds for what it saw, or until what it sees has not changed for
    ``still`` seconds, or the deadline passed; returns the last observation. For watching something that
    may never finish (a framework that drops a message): once nothing moves, waiting longer only costs time."""
    deadline = time.monotonic() + timeout
    last: object = object()
    changed = time.monotonic()
    while True:
        seen = observe()  # one observation per poll: done and the stillness check share it
        if done(seen):
            return seen
        if seen != last:
            last, changed = seen, time.monotonic()
        if time.monotonic() >= deadline or time.monotonic() - changed >= still:
            return seen
        time.sleep(interval)  # the poll interval


def wait_while_progressing(count: Callable[[], int], target: int, *, timeout: float, stall: float,
                           interval: float = 0.25) -> int:
    """Poll ``count()`` until it reaches ``target``, but give up once it has not grown for ``stall`` seconds
    (or at ``timeout``). Returns the last count, never raises: where a message can be lost, what is missing
    is the observation, and a deadline spent waiting for it only costs time."""
    deadline = time.monotonic() + timeout
    last, changed = -1, time.monotonic()
    while True:
        now_count = count()
        if now_count >= target:
            return now_count
        if now_count != last:
            last, changed = now_count, time.monotonic()
        if time.monotonic() >= deadline or time.monotonic() - changed >= stall:
            return now_count
        time.sleep(interval)  # the poll interval
