"""The suite without a broker: run_cell, compare and the guide on StubStack variants.

A variant declares capabilities; the scenarios derive their expectations from them. One variant
behaves otherwise than it declares, and the runner must report that as a mismatch, not hide it.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from queuekit.core.config import Settings
from queuekit.stacks import registry
from queuekit.stacks.stub import StubStack
from queuekit.suite.compare import compare
from queuekit.suite.guide import guide
from queuekit.suite.model import AtLeast, Scenario, always, by_capability, for_stack
from queuekit.suite.runner import run_cell
from scenarios import BY_NAME

QUEUE = StubStack  # a queue: what was acked is gone
LOG = StubStack.variant("stub-log", replayable=True, per_key_order=True)  # a log: history stays readable
LIAR = StubStack.variant("stub-liar", replayable=True, behaves={"replayable": False})  # declares a log, is a queue


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def stubs(monkeypatch):
    """The stub variants as registered stacks, for this test only."""
    for cls in (QUEUE, LOG, LIAR):
        monkeypatch.setitem(registry.STACKS, cls.name, cls)
    return [QUEUE.name, LOG.name]


def test_a_cell_passes_when_the_observation_matches_the_capability(settings, tmp_path):
    queue = run_cell(BY_NAME["replay"], QUEUE, settings, tmp_path)
    log = run_cell(BY_NAME["replay"], LOG, settings, tmp_path)
    assert (queue.ok, queue.expected["replayed"], queue.observed["replayed"]) == (True, "== 0", 0)
    assert (log.ok, log.expected["replayed"], log.observed["replayed"]) == (True, "== 20", 20)
    assert json.loads((tmp_path / "replay-stub-log.json").read_text())["observed"]["replayed"] == 20


def test_a_declaration_the_stack_does_not_keep_is_reported_as_a_mismatch(settings, tmp_path):
    cell = run_cell(BY_NAME["replay"], LIAR, settings, tmp_path)
    assert not cell.ok and cell.error is None
    assert cell.mismatches == ["replayed: observed 0, expected == 20"]
    assert "mismatch: replayed" in cell.explain()


def _scenario(run, **changes) -> Scenario:
    base = Scenario(name="synthetic", concept="test", question="?", workload="signup", run=run,
                    expect=[always(lost=0), by_capability("pull_based", yes={"lag": AtLeast(1)}, no={"refused": 1}),
                            for_stack("stub-log", "a finding of that framework only", lost=AtLeast(0))])
    return replace(base, **changes)


def test_expectations_come_from_capabilities_and_per_name_rows(settings, tmp_path):
    scenario = _scenario(lambda ctx: {"lost": 3, "refused": 1})
    assert scenario.expected("stub", QUEUE.capabilities) == {"refused": 1, "lost": 0}
    assert scenario.expected("stub-log", replace(LOG.capabilities, pull_based=True)) == {"lag": AtLeast(1),
                                                                                         "lost": AtLeast(0)}
    cell = run_cell(scenario, QUEUE, settings, tmp_path)
    assert cell.mismatches == ["lost: observed 3, expected == 0"]


def test_a_cell_that_raises_is_an_error_not_a_mismatch(settings, tmp_path):
    def boom(ctx):
        raise RuntimeError("the broker went away")

    cell = run_cell(_scenario(boom), QUEUE, settings, tmp_path)
    assert cell.error == "RuntimeError: the broker went away" and cell.mismatches == [] and not cell.ok


def test_a_broker_restart_cell_is_skipped_on_brokers_the_kit_does_not_manage(settings, tmp_path):
    cell = run_cell(_scenario(lambda ctx: {}, needs_kit_brokers=True), QUEUE, replace(settings, mode="external"),
                    tmp_path)
    assert cell.skipped and cell.ok and cell.observed == {}


def test_compare_orders_cells_and_the_guide_names_the_best_observed(settings, tmp_path, stubs):
    scenarios = [BY_NAME["work-distribution"], BY_NAME["replay"]]
    result = compare(settings, scenarios, stubs, tmp_path)
    assert [(c.scenario, c.stack) for c in result.cells] == [
        ("work-distribution", "stub"), ("work-distribution", "stub-log"), ("replay", "stub"), ("replay", "stub-log")]
    assert all(c.ok for c in result.cells) and result.environment["brokers"] == {}  # no broker was asked
    rows = {r["scenario"]: r for r in guide(result)}
    assert set(rows) == {"work-distribution", "replay"}  # claims without evidence in this run are left out
    assert rows["replay"]["values"] == {"stub": 0, "stub-log": 20}
    assert rows["replay"]["verdict"] == "best observed: stub-log"
    assert rows["work-distribution"]["verdict"] == "no difference observed"


def test_compare_lanes_keep_an_app_family_together_and_the_slowest_first():
    from dataclasses import replace

    from queuekit.core.config import Settings
    from queuekit.stacks.registry import stack_names
    from queuekit.suite.compare import family_lanes

    external = replace(Settings.from_env(), mode="external")
    lanes = family_lanes(stack_names(), external)
    assert lanes["rabbitmq:celery"] == ["celery", "celery_quorum"]  # the same queue names, one vhost: one lane
    assert lanes["rabbitmq:dramatiq"] == ["dramatiq", "dramatiq_quorum"]
    assert list(lanes)[:2] == ["rabbitmq:celery", "kafka:celery"]  # Celery boots slowest: its lanes start first
    assert sorted(n for names in lanes.values() for n in names) == sorted(stack_names())
    # On the kit's own broker celery_quorum gets a vhost, and so a lane, of its own
    own = family_lanes(stack_names(), replace(Settings.from_env(), mode="local", external_amqp_url=None))
    assert own["rabbitmq:celery"] == ["celery"] and own["rabbitmq:celery_quorum"] == ["celery_quorum"]
    assert set(list(own)[:3]) == {"rabbitmq:celery", "rabbitmq:celery_quorum", "kafka:celery"}


def test_a_broker_restarting_cell_holds_its_broker_alone():
    import threading
    import time

    from queuekit.core.waiting import wait_for
    from queuekit.suite.compare import BrokerGate

    gate, events, inside = BrokerGate(), [], threading.Event()

    def cell(name: str, broker: str, exclusive: bool, seconds: float) -> None:
        with gate.hold(broker, exclusive):
            events.append(f"{name} in")
            inside.set()
            time.sleep(seconds)  # the cell's work: what a cell waiting for the broker must wait for
            events.append(f"{name} out")

    def start(*args) -> threading.Thread:
        thread = threading.Thread(target=cell, args=args)
        thread.start()
        return thread

    threads = [start("a", "rabbitmq", False, 0.3)]
    assert inside.wait(5)
    threads.append(start("restart", "rabbitmq", True, 0.1))
    wait_for(lambda: gate.alone.get("rabbitmq"), timeout=5,  # the restart cell now waits
             what="the broker-restart cell to ask for RabbitMQ alone")
    threads += [start("b", "rabbitmq", False, 0.0),  # arrives while the restart cell waits: goes after it
                start("k", "kafka", False, 0.0)]  # another broker is not held up
    for thread in threads:
        thread.join(5)
    assert events.index("a out") < events.index("restart in") < events.index("restart out") < events.index("b in")
    assert events.index("k in") < events.index("a out")
