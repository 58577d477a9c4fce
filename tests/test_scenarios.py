"""The scenario suite: every scenario on every stack, on the real brokers.

Ids are ``scenario-<name>-<stack>``, so ``pytest -k "scenario and dramatiq"``
or ``pytest -k scenario-ordering`` pick a slice. A cell passes when what it
observed matches what the scenario declares for that stack; the observation
is written as JSON and printed on a mismatch.
"""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import load_stack, stack_names
from queuekit.suite.runner import run_cell
from scenarios import SCENARIOS

# One lane per broker (pytest -n 2 --dist loadgroup): cells of one broker run one at a time, since they
# reset the same broker; a RabbitMQ cell and a Kafka cell share nothing and may run side by side.
CELLS = [pytest.param(scenario, stack, id=f"scenario-{scenario.name}-{stack}",
                      marks=pytest.mark.xdist_group(load_stack(stack).capabilities.broker))
         for scenario in SCENARIOS for stack in stack_names()]


@pytest.mark.parametrize("scenario,stack", CELLS)
def test_scenario(kit, tmp_path, scenario, stack):
    result = run_cell(scenario, stack, kit, tmp_path)
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.error is None, result.explain()
    assert result.ok, result.explain()
