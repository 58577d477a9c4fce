"""The delivery contract and the workloads, run on every registered stack in turn."""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import stack_names


@pytest.fixture(params=stack_names())
def stack(request, fresh_stack):
    return fresh_stack(request.param)
