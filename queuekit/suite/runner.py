"""Run one scenario on one stack and record what was observed (one JSON per cell)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from queuekit.core.config import Settings
from queuekit.core.ledger import Ledger
from queuekit.stacks.base import Stack
from queuekit.stacks.registry import load_stack
from queuekit.suite.model import Context, Scenario, describe


@dataclass
class CellResult:
    scenario: str
    stack: str
    concept: str
    observed: dict[str, Any]
    expected: dict[str, str]
    mismatches: list[str]
    seconds: float
    options: dict[str, Any]
    error: str | None = None
    skipped: str | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # observation -> its declared Kind (Scenario.kinds)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.error is None  # a skipped cell is not a failure

    def explain(self) -> str:
        lines = [f"scenario {self.scenario} on {self.stack}: observed {json.dumps(self.observed, default=str)}"]
        lines += [f"  mismatch: {m}" for m in self.mismatches]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def broker_version(settings: Settings, broker: str) -> str | None:
    """The version of ``broker`` the cells run on, as far as the kit knows it: its own RabbitMQ node's
    (``QUEUEKIT_RABBITMQ_VERSION``); None for another broker or someone else's RabbitMQ (the stack's
    declaration then stands as written)."""
    if broker != "rabbitmq" or settings.external("rabbitmq"):
        return None
    from queuekit.brokers.rabbitmq_root import resolve_version

    return resolve_version(settings.rabbitmq_version)


def run_cell(scenario: Scenario, stack: str | type[Stack], settings: Settings, workdir: Path) -> CellResult:
    """Reset the stack's broker state, start it, run the scenario, stop it; never raises for a mismatch.

    ``stack`` is a registered name, or a Stack class itself (a test's StubStack variant)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stack_cls = load_stack(stack) if isinstance(stack, str) else stack
    stack_name = stack_cls.name
    caps = stack_cls.capabilities_on(broker_version(settings, stack_cls.capabilities.broker))  # this node's version
    expected = scenario.expected(stack_name, caps)
    options = scenario.options_for(caps)
    described = {k: describe(v) for k, v in expected.items()}
    if scenario.needs_kit_brokers and (settings.mode != "local" or settings.external_amqp_url
                                       or settings.external_kafka_bootstrap):
        return CellResult(scenario.name, stack_name, scenario.concept, {}, described, [], 0.0, asdict(options),
                          skipped="restarts the broker: only with brokers the kit manages")
    ledger = Ledger(workdir / f"{scenario.name}-{stack_name}.db")
    ledger.reset()
    instance = stack_cls(settings, ledger.path)
    t0 = time.monotonic()
    observed: dict[str, Any] = {}
    error = None
    try:
        instance.reset()  # any subset of scenarios runs in any order
        instance.start([scenario.workload], options)
        observed = scenario.run(Context(instance, ledger, options, scenario.workload, scenario))
    except Exception as exc:  # noqa: BLE001 - reported in the result, the matrix goes on
        error = f"{type(exc).__name__}: {exc}"
    finally:
        instance.stop()
    result = CellResult(
        scenario=scenario.name, stack=stack_name, concept=scenario.concept, observed=observed,
        expected=described, mismatches=scenario.check(expected, observed) if error is None else [],
        seconds=round(time.monotonic() - t0, 2), options=asdict(options), error=error,
        kinds={key: kind for key, kind in scenario.kinds.items() if key in observed},
    )
    (workdir / f"{scenario.name}-{stack_name}.json").write_text(json.dumps(result.as_dict(), indent=2, default=str))
    return result
