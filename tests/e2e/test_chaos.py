"""``queuekit chaos``, bounded for CI: a kill loop under load on every stack, then the Jepsen-style count."""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import STACKS, load_stack
from queuekit.suite.chaos import run_chaos

SECONDS = 10.0  # the loop; with start, drain and reset each stack takes well under a minute


@pytest.mark.parametrize("name", list(STACKS))
def test_chaos_kill_loop_loses_nothing(kit, name):
    """Nothing lost, nothing unexpected, no duplicate effect (beyond what the stack's capabilities declare)."""
    tally = run_chaos(kit, name, mode="kill", seconds=SECONDS, every=1.5, workers=2, rate=50)
    print(f"\nchaos {name}: {tally.as_dict()}")
    assert tally.kills >= 1 and tally.confirmed > 0, tally.as_dict()
    # a stack whose delivery pops the message before it records it as unacked may lose one per kill, no more
    # (capabilities.popped_before_tracked: kombu's Redis transport); every other stack loses nothing
    may_lose = tally.kills if load_stack(name).capabilities.popped_before_tracked else 0
    assert tally.lost <= may_lose and (tally.unexpected, tally.duplicates) == (0, 0), tally.as_dict()
    # every confirmed message took effect, but for the declared losses counted above
    assert tally.effects >= tally.confirmed - tally.lost and tally.attempts >= tally.effects, tally.as_dict()
