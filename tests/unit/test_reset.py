"""The Stack template's reset of some workloads: only their objects, and one line per kind deleted.

Broker-free: the in-memory StubStack runs the template's ``reset`` as every stack does; the same rule on
real brokers is tests/e2e/test_run_reset.py.
"""
from __future__ import annotations

from helpers import BAD_TYPE, NOT_UTF8

from queuekit.core.config import Settings
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.reset import Purged, only
from queuekit.stacks.stub import StubStack
from workloads import WORKLOADS


def test_a_reset_of_one_workload_keeps_another_workloads_dead_letters(tmp_path):
    stack = StubStack(Settings.from_env(), Ledger(tmp_path / "ledger.db").path)
    stack.reset()
    stack.start(["signup"], StackOptions(workers=1))
    try:
        stack.publish_raw("signup", NOT_UTF8)
        stack.publish_raw("signup", BAD_TYPE)
        wait_for(lambda: len(stack.dead_letters("signup")) == 2, timeout=10, what="2 signup dead letters")
    finally:
        stack.stop()
    other = stack.reset(["video"])
    assert len(stack.dead_letters("signup")) == 2, "a reset of video deleted signup's dead letters"
    assert "signup" not in other.dead_letters
    mine = stack.reset(["signup"])
    assert stack.dead_letters("signup") == [] and mine.dead_letters == {"signup": 2}
    assert mine.lines("stub/signup") == ["reset stub/signup: deleted dead letters: signup (2 messages)"]


def test_only_keeps_a_name_another_workload_uses_unless_every_workload_is_reset():
    def names_of(workloads):  # one exchange every workload shares, and one queue per workload
        return ["shared"] + [f"q.{w}" for w in workloads]

    assert only(["signup"], names_of) == ["q.signup"]
    assert only(list(WORKLOADS), names_of) == ["shared", *(f"q.{w}" for w in WORKLOADS)]


def test_one_line_per_kind_with_names_and_count_and_the_dead_letters_with_their_messages():
    purged = Purged()
    purged.deleted("queue", ["a", "b", "a"])
    purged.deleted("topic", [f"t{i}" for i in range(10)])
    purged.dead({"a.dlq": 3, "b.dlq": 0})
    assert purged.lines("x/signup") == [
        "reset x/signup: deleted 2 queue(s): a, b",
        "reset x/signup: deleted 10 topic(s): t0, t1, t2, t3, t4, t5, t6, t7, … (+2 more)",
        "reset x/signup: deleted dead letters: a.dlq (3 messages)"]
    nothing = Purged()
    nothing.deleted("queue", [])  # asked to delete names that did not exist
    assert nothing.lines("x/video") == ["reset x/video: nothing of it on the broker"]
