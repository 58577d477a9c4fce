"""The RabbitMQ version as a dimension of compare, broker-free: the versions compare chooses, the node beside
the kit's, and the report's "what changes" section, rendered from a results.json of a real
``compare --rabbitmq 3.10,4`` run (tests/unit/data; the run itself: tests/e2e/test_compare_versions.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from queuekit.brokers.rabbitmq_root import BESIDE_STEP, NEWEST_4, beside
from queuekit.core.config import Settings
from queuekit.report import markdown, write_reports
from queuekit.report.known_changes import KNOWN, explain
from queuekit.report.versions import within
from queuekit.suite import versions
from scenarios import BY_NAME

RUN = json.loads((Path(__file__).parent / "data" / "compare-rabbitmq-3.10-4.3.json").read_text())


def test_versions_parse_in_order_once_and_4_means_the_newest():
    assert versions.parse("3.10,4") == ["3.10", NEWEST_4]
    assert versions.parse(" 4.3 , 4 ,3.10") == [NEWEST_4, "3.10"]
    assert versions.split_column("celery@4.3") == ("celery", "4.3") and versions.split_column("celery") == ("celery", None)


def test_compare_defaults_to_both_versions_only_where_4x_can_run(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("QUEUEKIT_RABBITMQ_VERSION", raising=False)
    monkeypatch.setattr(versions, "why_not_runnable", lambda s, v: None)
    assert versions.default_versions(Settings.from_env()) == (["3.10", NEWEST_4], None)
    monkeypatch.setattr(versions, "why_not_runnable", lambda s, v: f"RabbitMQ {v} needs root")
    chosen, why = versions.default_versions(Settings.from_env())
    assert chosen == ["3.10"] and why and "needs root" in why  # said, not silently dropped
    monkeypatch.setenv("QUEUEKIT_RABBITMQ_VERSION", "4")  # an explicit version: that one alone
    assert versions.default_versions(Settings.from_env()) == ([NEWEST_4], None)


def test_the_other_version_runs_beside_the_kits_node_on_its_own_ports_and_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    monkeypatch.setenv("QUEUEKIT_PORT_OFFSET", "7000")
    base = Settings.from_env()
    other = beside(base, "4", 1)
    assert other.rabbitmq_version == NEWEST_4 and other.port_offset == 7000 + BESIDE_STEP
    assert other.ports.amqp == base.ports.amqp + BESIDE_STEP and other.run_dir != base.run_dir
    assert beside(base, "4.0", 2).ports.amqp == base.ports.amqp + 2 * BESIDE_STEP  # a third version: further up


def test_a_two_version_run_splits_into_the_same_columns_on_each_version():
    [(before, after)] = within(RUN)
    assert before["stacks"] == after["stacks"] == ["celery_quorum", "rabbitmq_stream"]  # kafka runs once
    assert before["environment"]["brokers"]["rabbitmq"]["version"].startswith("3.10.")
    assert after["environment"]["brokers"]["rabbitmq"]["version"].startswith("4.3.")
    assert {c["stack"] for c in after["cells"]} == {"celery_quorum", "rabbitmq_stream"}
    assert within({**RUN, "stacks": [s for s in RUN["stacks"] if "@" not in s]}) == []  # one version: no section


def test_the_report_says_what_changes_and_leaves_a_difference_nothing_explains_unexplained(tmp_path):
    text = markdown(RUN)
    section = text[text.index("## What changes from rabbitmq 3.10.8 to rabbitmq 4.3.6"):text.index("## Every cell")]
    # this run: the streams' work-distribution differed by which reader got there first (idle_workers 2 vs 1):
    # the stack uses no single active consumer on either version, so 3.11's change does not explain it
    assert "1 cells differ, 3 are the same; 0 differ in meaning or in meeting their expectation, 1 only" in section
    assert "| work-distribution | rabbitmq_stream |" in section and section.rstrip().endswith("| unexplained (numbers only) |")
    page = write_reports(RUN, tmp_path)["html"].read_text()
    assert 'id="versions-4.3.6"' in page and "unexplained" in page
    assert "<b>idle_workers=1</b>" in page and "**" not in page.split('id="versions-4.3.6"')[1].split("</table>")[0]
    assert 'data-stack="celery_quorum@4.3"' not in page.split('id="code-view"')[1]  # the code is shown once


def _row(scenario: str, changed: list[str], **more) -> dict:
    return {"scenario": scenario, "stack": "s", "changed": changed, **more}


def test_a_known_change_explains_only_cells_it_can_change_between_the_versions_run():
    default_limit = _row("poison-crash-loop", ["ended"], options={"delivery_limit": None})
    found = {(k.since, k.source.rsplit("/", 1)[-1]) for k in explain(default_limit, "3.10.8", "4.3.6")}
    assert ("4.0", "v4.0.1") in found and ("4.3", "15387") in found
    # the kit's own x-delivery-limit set: 4.0's default of 20 cannot be what changed the cell
    assert "v4.0.1" not in {k.source.rsplit("/", 1)[-1] for k in
                            explain(_row("poison-crash-loop", ["ended"], options={"delivery_limit": 1}), "3.10.8", "4.3.6")}
    assert explain(default_limit, "3.10.8", "3.10.8") == [] and explain(default_limit, "4.3.6", "4.3.6") == []
    assert [k.since for k in explain(default_limit, "3.10.8", "4.0.5")] == ["4.0"]  # 4.3's change is not in 4.0
    # streams' single active consumer: only where the stack declares it on the newer version
    assert explain(_row("work-distribution", ["idle_workers"]), "3.10.8", "4.3.6") == []
    assert [k.since for k in explain(_row("work-distribution", ["idle_workers"], expectation_changed=True),
                                     "3.10.8", "4.3.6")] == ["3.11"]


@pytest.mark.parametrize("change", KNOWN, ids=lambda k: f"{k.since}-{k.source.rsplit('/', 1)[-1]}")
def test_every_known_change_names_real_scenarios_and_numbers_they_expect(change):
    for name in change.scenarios:
        scenario = BY_NAME[name]  # a KeyError names a scenario that does not exist
        expected = {key for rule in scenario.expect
                    for key in (getattr(rule, "expected", None) or
                                {k for case in getattr(rule, "cases", {}).values() for k in case})}
        assert not change.metrics or set(change.metrics) & expected, (name, change.metrics)
    assert change.source.startswith("https://")


# -- capabilities that depend on the broker's version ---------------------------------------------------------
def test_capabilities_since_apply_from_their_version_on_oldest_first():
    from queuekit.stacks.capabilities import on_version
    from queuekit.stacks.stub import STUB_CAPABILITIES

    since = {"4.3": {"default_delivery_limit": None}, "4.0": {"default_delivery_limit": 20, "replayable": True}}
    assert on_version(STUB_CAPABILITIES, since, "3.10") == STUB_CAPABILITIES
    assert on_version(STUB_CAPABILITIES, since, "4.0.5").default_delivery_limit == 20
    four3 = on_version(STUB_CAPABILITIES, since, "4.3")  # 4.0's change, then 4.3's over it
    assert (four3.default_delivery_limit, four3.replayable) == (None, True)
    assert on_version(STUB_CAPABILITIES, since, None) == STUB_CAPABILITIES  # someone else's broker: as declared


def test_the_quorum_stacks_declare_rabbitmq_4s_default_delivery_limit():
    from queuekit.stacks.registry import load_stack

    for name in ("celery_quorum", "dramatiq_quorum"):
        stack = load_stack(name)
        assert stack.capabilities_on("3.10").default_delivery_limit is None
        assert stack.capabilities_on(NEWEST_4).default_delivery_limit == 20
    assert load_stack("celery").capabilities_on(NEWEST_4).default_delivery_limit is None  # classic: none


def test_a_capabilities_since_naming_no_capability_fails_at_load(monkeypatch):
    from queuekit.core.errors import KitError
    from queuekit.stacks import registry
    from tests.throwaway_stack import ThrowawayStack

    broken = type("Broken", (ThrowawayStack,), {"name": "broken", "capabilities_since": {"4.0": {"nope": 1}}})
    monkeypatch.setitem(registry.STACKS, "broken", broken)
    with pytest.raises(KitError, match="unknown: nope"):
        registry.load_stack("broken")


def test_compare_judges_each_versions_column_by_the_capabilities_of_that_version(tmp_path, monkeypatch):
    """Broker-free: a stub that says it is on RabbitMQ and declares replay from 4.0 on, but behaves as a queue
    everywhere: its 3.10 column passes, its 4.3 column is judged by the 4.x declaration and fails."""
    from queuekit.stacks import registry
    from queuekit.stacks.stub import StubStack
    from queuekit.suite.compare import compare

    stub = StubStack.variant("stub-rabbit", broker="rabbitmq")
    stub = type("StubRabbit", (stub,), {"capabilities_since": {"4.0": {"replayable": True}}})
    monkeypatch.setitem(registry.STACKS, "stub-rabbit", stub)
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    monkeypatch.setenv("QUEUEKIT_PORT_OFFSET", "9900")  # nothing listens there: the version check finds no node
    monkeypatch.delenv("QUEUEKIT_RABBITMQ_VERSION", raising=False)
    settings = Settings.from_env()
    result = compare(settings, [BY_NAME["replay"]], ["stub-rabbit"], tmp_path / "run",
                     versions={NEWEST_4: beside(settings, NEWEST_4)})
    assert result.stacks == ["stub-rabbit", f"stub-rabbit@{NEWEST_4}"]
    old, new = (result.cell("replay", s) for s in result.stacks)
    assert old and new and (old.ok, old.expected["replayed"]) == (True, "== 0")
    assert (new.ok, new.expected["replayed"], new.observed["replayed"]) == (False, "== 20", 0)
    assert (tmp_path / "run" / "cells" / NEWEST_4 / "replay-stub-rabbit.json").exists()  # its own folder


def test_an_unknown_version_in_the_list_is_refused_naming_the_option_and_the_choices():
    from queuekit.core.errors import KitError

    with pytest.raises(KitError) as err:
        versions.parse("3.10,3.9")
    assert str(err.value).startswith("--rabbitmq '3.10,3.9': '3.9' is not a version") and "4.3" in str(err.value)
