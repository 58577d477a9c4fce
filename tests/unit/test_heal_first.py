"""``whole_or_fresh``: the cluster tests' heal check, without brokers (its parts are stubbed; the real
cluster runs are tests/brokers/test_faults.py and tests/scenarios/test_cluster_faults.py)."""
from __future__ import annotations

import pytest

from queuekit.brokers import faults
from queuekit.core.waiting import WaitTimeout


@pytest.fixture
def calls(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(faults, "fresh_cluster", lambda settings, broker, say: seen.append(f"fresh {broker}"))
    return seen


def test_a_whole_cluster_says_nothing(monkeypatch, calls):
    monkeypatch.setattr(faults, "wait_whole", lambda settings, broker, timeout=60.0: [])
    assert faults.whole_or_fresh(None, "rabbitmq") == "" and calls == []


def test_a_mended_split_names_the_restarted_nodes(monkeypatch, calls):
    monkeypatch.setattr(faults, "wait_whole", lambda settings, broker, timeout=60.0: [0, 2])
    assert faults.whole_or_fresh(None, "rabbitmq") == "rabbitmq node(s) [1, 3] restarted to rejoin a split cluster"
    assert calls == []


def test_a_heal_that_did_not_complete_forms_the_cluster_once_more_and_says_so(monkeypatch, calls):
    answers = iter([WaitTimeout("still split"), []])

    def wait_whole(settings, broker, timeout=60.0):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(faults, "wait_whole", wait_whole)
    said: list[str] = []
    done = faults.whole_or_fresh(None, "rabbitmq", said.append)
    assert calls == ["fresh rabbitmq"] and "formed again from empty data" in done
    assert said and "did not heal" in said[0]


def test_a_fresh_cluster_that_is_not_whole_fails_saying_why(monkeypatch, calls):
    def wait_whole(settings, broker, timeout=60.0):
        raise WaitTimeout(f"not whole after {timeout:g} s")

    monkeypatch.setattr(faults, "wait_whole", wait_whole)
    with pytest.raises(WaitTimeout, match="after 120 s"):
        faults.whole_or_fresh(None, "rabbitmq")
    assert calls == ["fresh rabbitmq"]
