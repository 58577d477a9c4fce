"""The delivery contract and the workloads, run on every registered stack in turn."""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import load_stack, stack_names


def contract_params() -> list:
    """One param per registered stack. A stack that declares a ``known_loss`` (a finding: kombu's experimental
    confluentkafka transport lost a message now and then in clean runs, with no worker crash) runs and
    reports, and such a loss shows as xfail rather than failing the suite. Every other stack must hold."""
    return [pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=False))
            if (reason := load_stack(name).known_loss) else name for name in stack_names()]


@pytest.fixture(params=contract_params())
def stack(request, fresh_stack):
    return fresh_stack(request.param)
