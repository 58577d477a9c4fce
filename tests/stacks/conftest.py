"""Stacks on the real brokers, each with a fresh ledger and reset broker state."""
from __future__ import annotations

import pytest

from queuekit.core.ledger import Ledger
from queuekit.stacks.registry import STACKS, load_stack


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.db")


@pytest.fixture
def fresh_stack(kit, ledger):
    """``fresh_stack("celery")``: a reset stack on this test's ledger, stopped after the test."""
    made = []

    def make(name: str):
        instance = load_stack(name)(kit, ledger.path)
        instance.reset()
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture(params=list(STACKS))
def stack(request, fresh_stack):
    """Every stack in turn (the shared workload tests)."""
    return fresh_stack(request.param)


@pytest.fixture
def kafka(fresh_stack):
    return fresh_stack("kafka")
