"""A stack per test, on the real brokers, with a fresh ledger and reset broker state."""
from __future__ import annotations

import pytest

from queuekit.ledger import Ledger
from queuekit.stack import STACKS, load_stack


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.db")


@pytest.fixture(params=list(STACKS))
def stack(request, kit, ledger):
    cls = load_stack(request.param)
    instance = cls(kit, ledger.path)
    instance.reset()
    yield instance
    instance.stop()
