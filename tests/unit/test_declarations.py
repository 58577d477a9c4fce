"""Only the app package names its stack: a stack declared once is everywhere; a missing declaration fails at load.

Broker-free. The throwaway stack (tests/throwaway_stack.py) declares only what is required; no other
file knows it, and it appears in ``compare --stack``, the dashboard, the hostile corpus and the contract
suite.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner
from throwaway_stack import TARGET, ThrowawayStack

from queuekit import brokers
from queuekit.cli import cli
from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.stacks import declaration, registry
from queuekit.stacks.base import Stack
from queuekit.stacks.stub import STUB_CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def throwaway(monkeypatch):
    monkeypatch.setitem(registry.STACKS, "throwaway", TARGET)  # a dotted target, as every real stack's

    def no_brokers(*args, **kwargs):
        raise AssertionError("an in-memory stack must not start brokers")

    monkeypatch.setattr(brokers, "up", no_brokers)
    return "throwaway"


def test_the_throwaway_stack_declares_only_what_is_required():
    own = {k for k in vars(ThrowawayStack) if not k.startswith("_")}
    assert own == set(declaration.REQUIRED), own ^ set(declaration.REQUIRED)


def test_it_appears_in_compare(throwaway, tmp_path):
    done = CliRunner().invoke(cli, ["compare", "--stack", throwaway, "--scenario", "replay", "--format", "json",
                                    "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["stacks"] == [throwaway] and [c["stack"] for c in doc["cells"]] == [throwaway]
    cell = doc["cells"][0]
    assert cell["error"] is None and cell["mismatches"] == [] and cell["observed"], cell  # it ran, as declared


@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
def test_it_appears_on_the_dashboard_whose_card_says_it_has_no_live_view(throwaway, tmp_path):
    from starlette.testclient import TestClient

    from queuekit.live.dashboard import Sampler, create_app

    settings = Settings.from_env().with_(home=tmp_path)
    state = TestClient(create_app(settings)).get("/api/state").json()  # no lifespan: nothing is sampled
    assert [s["name"] for s in state["stacks"]] == list(registry.stack_names())
    assert throwaway in [s["name"] for s in state["stacks"]]
    sampler = Sampler(settings, (throwaway,))
    sampler.sample()
    [card] = sampler.state()["stacks"]
    assert card["name"] == throwaway and "no live view" in card["error"] and card["workloads"] == []


def test_it_appears_in_the_hostile_corpus_and_the_contract_suite():
    """A real collection of the per-stack suites, with the stack registered by a plugin before it starts."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "throwaway_stack", "--collect-only", "-q",
                           "tests/contract", "tests/e2e/test_hostile.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ids = done.stdout.splitlines()
    assert "tests/e2e/test_hostile.py::test_hostile_inputs[throwaway]" in ids, done.stdout[-2000:]
    contract = [i for i in ids if i.startswith("tests/contract/") and "[throwaway" in i]
    assert any("test_delivery_contract.py::test_dead_letters_keep_the_bytes_and_say_why[throwaway]" in i
               for i in contract), done.stdout[-2000:]
    assert any("test_workloads_end_to_end.py" in i for i in contract), done.stdout[-2000:]


def test_a_missing_declaration_fails_at_load_naming_it(monkeypatch):
    class Incomplete(Stack):  # no libraries, no cluster
        name = "incomplete"
        worker_module = "queuekit.stacks.stub"
        capabilities = STUB_CAPABILITIES
        raw_publisher = TARGET.replace("ThrowawayStack", "Wire")
        observer = None

    monkeypatch.setitem(registry.STACKS, "incomplete", Incomplete)
    with pytest.raises(KitError) as failed:
        registry.load_stack("incomplete")
    message = str(failed.value)
    assert "missing libraries" in message and "missing cluster" in message and "Incomplete" in message
    assert "missing observer" not in message  # declared as None: a statement, not an omission


@pytest.mark.parametrize("attr,value,said", [
    ("raw_publisher", "no_such_module:Wire", "does not import"),
    ("raw_publisher", "throwaway_stack", "must name a callable"),
    ("observer", "throwaway_stack", "must be a module with observe()"),
    ("libraries", ["celery"], "must be a tuple"),
])
def test_a_declared_target_of_the_wrong_kind_fails_at_load(monkeypatch, attr, value, said):
    broken = type("Broken", (ThrowawayStack,), {"name": "broken", attr: value})
    monkeypatch.setitem(registry.STACKS, "broken", broken)
    with pytest.raises(KitError, match=said):
        registry.load_stack("broken")


def test_every_registered_stack_passes_its_declaration_check():
    for name in registry.stack_names():
        assert registry.load_stack(name).name == name  # load_stack runs declaration.check


def test_every_app_package_is_named_in_the_import_contracts():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    linter = project["tool"]["importlinter"]
    contracts = {c["name"]: c for c in linter["contracts"]}
    named = {
        "root_packages": set(linter["root_packages"]),
        "App packages do not import each other": set(contracts["App packages do not import each other"]["modules"]),
        "Apps import only core, stacks and workloads (and their frameworks)": set(
            contracts["Apps import only core, stacks and workloads (and their frameworks)"]["source_modules"]),
    }
    packages = {registry.app_package(name) for name in registry.stack_names()}
    missing = [f'add "{package}" to {where} in pyproject.toml [tool.importlinter]'
               for package in sorted(packages) for where, modules in named.items() if package not in modules]
    assert not missing, "; ".join(missing)


def test_test_lanes_derive_from_the_declared_broker(throwaway):
    from conftest import broker_lane

    assert broker_lane("tests/contract/test_delivery_contract.py::test_x[throwaway]") == "memory"
    assert broker_lane("tests/scenarios/test_scenarios.py::TestKafkaLane::test_scenario[scenario-replay-celery_kafka]") \
        == "kafka"
    assert broker_lane("tests/stacks/test_kafka_transactions.py::test_fencing") == "kafka"  # the stack it starts with
    assert broker_lane("tests/stacks/test_rabbitmq_stream_semantics.py::test_x") == "rabbitmq"
    assert broker_lane("tests/stacks/test_rabbitmq_queue_types.py::test_x") == "rabbitmq"  # a broker it names
    with pytest.raises(ValueError, match="no broker lane"):
        broker_lane("tests/stacks/test_something_else.py::test_x")


def test_the_cluster_topology_is_a_lane_of_its_own_and_every_lane_gets_a_worker(throwaway):
    from conftest import CLUSTER_LANE, broker_lane, lane_count

    # cluster fault cases name a stack in their ids, but run on the 3-node clusters, not on the stack's broker
    assert broker_lane("tests/scenarios/test_cluster_faults.py::test_cluster_fault[celery_quorum-kill]") == CLUSTER_LANE
    assert broker_lane("tests/brokers/test_faults.py::test_cluster_fault_kafka_leader[pause]") == CLUSTER_LANE
    assert broker_lane("tests/brokers/test_redis_cluster.py::test_redis_cluster_down_leaves_x") == CLUSTER_LANE
    assert broker_lane("tests/scenarios/test_scenarios.py::TestKafkaLane::test_scenario[scenario-x-kafka]") == "kafka"
    declared = {registry.load_stack(name).capabilities.broker for name in registry.stack_names()}
    assert lane_count() == len(declared) + 1 and "memory" in declared  # the throwaway stack's broker counts too
