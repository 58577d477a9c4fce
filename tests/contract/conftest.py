"""The delivery contract and the workloads, run on every registered stack in turn."""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import stack_names

# kombu's experimental confluentkafka transport lost a message now and then in clean runs, with no
# worker crash (see tests/scenarios/test_scenarios.py): its contract tests run and report, and such a
# loss shows as xfail rather than failing the suite. Every other stack must hold the contract.
LOSSY = {"celery_kafka": "kombu's confluentkafka transport lost a message in some runs (see README)"}


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.xfail(reason=LOSSY[name], strict=False))
                        if name in LOSSY else name for name in stack_names()])
def stack(request, fresh_stack):
    return fresh_stack(request.param)
