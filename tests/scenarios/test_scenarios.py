"""The scenario suite: every scenario on every stack, on the real brokers.

Ids are ``scenario-<name>-<stack>``, so ``pytest -k "scenario and dramatiq"``
or ``pytest -k scenario-ordering`` pick a slice. A cell passes when what it
observed matches what the scenario declares for that stack; the observation
is written as JSON and printed on a mismatch.

One test class per broker lane (``TestRabbitmqLane``, ``TestKafkaLane``, …):
``make test`` runs ``pytest -n <lanes>`` with the broker-lane scheduler of
``tests/conftest.py``, one worker per lane, so cells of one broker run one
at a time (they reset the same broker) while a RabbitMQ cell and a Kafka
cell, which share nothing, run side by side. (xdist's ``loadgroup`` did not keep groups together under
pytest 9.2 + xdist 3.8 here, so the lanes are classes.)
"""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import stack_names
from queuekit.suite.compare import lanes
from queuekit.suite.runner import run_cell
from scenarios import SCENARIOS


def _lane(broker: str, stacks: list[str]) -> type:
    # No xfail: every cell states what it expects (a loss, where loss is the finding, is declared in the
    # scenario). celery_kafka's occasional loss was stock kombu's ack; see celery_app/kafka_transport.py.
    cells = [pytest.param(scenario, stack, id=f"scenario-{scenario.name}-{stack}")
             for scenario in SCENARIOS for stack in stacks]

    class Lane:
        @pytest.mark.parametrize("scenario,stack", cells)
        def test_scenario(self, kit, tmp_path, scenario, stack):
            result = run_cell(scenario, stack, kit, tmp_path)
            if result.skipped:
                pytest.skip(result.skipped)
            assert result.error is None, result.explain()
            assert result.ok, result.explain()

    Lane.__name__ = Lane.__qualname__ = f"Test{broker.title()}Lane"
    return Lane


for _broker, _stacks in lanes(stack_names()).items():
    globals()[f"Test{_broker.title()}Lane"] = _lane(_broker, _stacks)
