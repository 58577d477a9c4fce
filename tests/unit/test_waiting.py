"""The kit's waits, on counters the test moves itself (no brokers)."""
from __future__ import annotations

import time

from queuekit.core.waiting import wait_until_still, wait_while_progressing


def test_a_count_that_reaches_its_target_returns_at_once():
    assert wait_while_progressing(lambda: 5, 5, timeout=10, stall=5) == 5


def test_a_count_that_stops_growing_is_given_up_after_the_stall_not_the_deadline():
    t0 = time.monotonic()
    seen = iter(range(1, 4))
    got = wait_while_progressing(lambda: next(seen, 3), 10, timeout=60, stall=0.5, interval=0.05)
    assert got == 3 and time.monotonic() - t0 < 5  # 3 of 10 arrived, then nothing: stops ~0.5 s later


def test_a_count_still_growing_is_waited_for_up_to_the_deadline():
    t0 = time.monotonic()
    got = wait_while_progressing(lambda: int((time.monotonic() - t0) * 100), 10**9, timeout=0.6, stall=0.5,
                                 interval=0.05)
    assert got > 0 and 0.6 <= time.monotonic() - t0 < 3


def test_until_still_returns_the_observation_that_was_done():
    looks = iter([1, 2, 3, 4])
    assert wait_until_still(lambda: next(looks), lambda seen: seen >= 3, timeout=10, still=5, interval=0.01) == 3


def test_until_still_gives_up_once_nothing_moves_not_at_the_deadline():
    t0 = time.monotonic()
    looks = iter([1, 2, 3])
    got = wait_until_still(lambda: next(looks, 3), lambda seen: seen >= 10, timeout=60, still=0.5, interval=0.05)
    assert got == 3 and time.monotonic() - t0 < 5  # 3 then nothing new: the last look, ~0.5 s later
