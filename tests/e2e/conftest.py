"""End-to-end tests on the real brokers: a reset stack on a fresh ledger (as in tests/stacks)."""
from __future__ import annotations

import pytest

from queuekit.core.ledger import Ledger
from queuekit.stacks.registry import load_stack


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
