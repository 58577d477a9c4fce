"""The design-review report from results.json alone: meaning of a cell, where stacks differ, any number of stacks."""
from __future__ import annotations

from queuekit.report import markdown
from queuekit.report.html import html_report
from queuekit.report.meaning import differences, meaning, same_everywhere


def cell(scenario, stack, mismatches=(), **observed):
    return {"scenario": scenario, "stack": stack, "concept": "c", "observed": observed,
            "expected": {k: "=?" for k in observed}, "mismatches": list(mismatches), "seconds": 1.0,
            "options": {}, "error": None, "skipped": None}


STACKS = ["celery", "dramatiq", "kafka", "share-groups"]  # four columns: nothing assumes three
RESULTS = {
    "started": "t", "seconds": 9.0, "stacks": STACKS, "environment": {"libraries": {"x": "1"}},
    "scenarios": [{"name": n, "concept": n, "question": "?"} for n in ("early-ack", "ordering", "back-pressure", "same")],
    "cells": [
        *[cell("early-ack", s, lost=int(s in ("celery", "kafka")), duplicates=0) for s in STACKS],
        *[cell("ordering", s, order_violations=0 if s == "kafka" else 7) for s in STACKS],
        *[cell("back-pressure", s, lost=0, publisher_refused=0 if s.startswith(("kafka", "share")) else 40,
               worker_rss_mb={"celery": 40, "dramatiq": 30, "kafka": 35, "share-groups": 33}[s]) for s in STACKS],
        *[cell("same", s, ["lost: expected 1, observed 0"] if s == "dramatiq" else (), lost=0) for s in STACKS],
    ],
}


def test_meaning_colours_by_what_the_numbers_say_not_by_the_expectation():
    assert meaning(cell("x", "celery", lost=1))[0] == "lost"
    assert meaning(cell("x", "celery", duplicate_effects=2))[0] == "lost"
    assert meaning(cell("x", "celery", order_violations=3))[0] == "order"
    assert meaning(cell("x", "kafka", long_task_attempts=3))[0] == "order"
    assert meaning(cell("x", "celery", lost=0, publisher_refused=5))[0] == "refused"
    assert meaning(cell("x", "celery", lost=0, effects_without_guard=20))[0] == "designed"
    # a mismatch does not change the colour: it is a separate mark
    assert meaning(cell("x", "dramatiq", ["lost: expected 1"], lost=0))[0] == "designed"


def test_differences_lead_worst_first_and_ignore_small_measured_spreads():
    rows = differences(RESULTS)
    assert [r["scenario"] for r in rows] == ["early-ack", "ordering", "back-pressure"]
    assert rows[0]["keys"] == ["lost"]
    assert rows[2]["keys"] == ["publisher_refused"]  # 30-40 MB RSS is not a difference (< 1.5x)
    assert same_everywhere(RESULTS) == ["same"]


def test_reports_render_every_stack_with_the_check_as_a_separate_mark():
    page = html_report(RESULTS)
    assert page.index('id="differences"') < page.index('id="matrix"')
    assert all(f"<th>{s}</th>" in page for s in STACKS)
    assert 'class="m-lost"' in page and 'class="m-order"' in page and 'class="m-refused"' in page
    # dramatiq's "same" cell, neutral colour, still flagged: in the full matrix and in its compact cell's detail
    assert page.count("✗ differs from expectation") == 2
    md = markdown(RESULTS)
    assert md.index("## Where the stacks differ") < md.index("## Every cell")
    assert "**LOST/DUPLICATED** ✓<br>**lost=1**" in md


def declared(scenario, stack, kinds, **observed):
    return {**cell(scenario, stack, **observed), "kinds": kinds}


def test_a_cell_is_coloured_by_the_kinds_its_scenario_declared_not_by_key_names():
    assert meaning(declared("x", "s", {"gone": "loss"}, gone=1))[0] == "lost"
    assert meaning(declared("x", "s", {"twice": "duplicate"}, twice=2))[0] == "lost"
    assert meaning(declared("x", "s", {}, lost=3, order_violations=2))[0] == "designed"  # undeclared: info
    assert meaning(declared("x", "s", {"swaps": "order"}, swaps=1)) == ("order", ["swaps=1"])
    assert meaning(declared("x", "s", {"runs": "retry"}, runs=2))[0] == "order"  # the same work started again
    assert meaning(declared("x", "s", {"runs": "retry"}, runs=1))[0] == "designed"
    assert meaning(declared("x", "s", {"nacks": "refused"}, nacks=4))[0] == "refused"
    assert meaning(declared("x", "s", {"poison_attempts": "info"}, poison_attempts=3))[0] == "designed"


def test_an_old_results_json_without_kinds_is_coloured_as_it_was():
    old = cell("x", "celery", poison_attempts=3, lost=0)  # no "kinds": written before scenarios declared them
    assert "kinds" not in old and meaning(old) == ("order", ["poison_attempts=3"])


def test_results_json_carries_the_declared_kinds_of_what_was_observed(tmp_path):
    from queuekit.core.config import Settings
    from queuekit.stacks.stub import StubStack
    from queuekit.suite.runner import run_cell
    from scenarios import BY_NAME

    result = run_cell(BY_NAME["ordering-per-key"], StubStack, Settings.from_env(), tmp_path).as_dict()
    assert result["kinds"] == {"lost": "loss", "duplicates": "duplicate", "order_violations": "order"}
    assert meaning(result)[0] == ("order" if result["observed"]["order_violations"] else "designed")


def test_every_observation_named_like_a_loss_order_or_retry_declares_its_kind():
    """A scenario that forgets to declare a kind would colour a loss as 'designed': the names the old
    convention read are a tripwire here (the colour itself comes only from the declaration)."""
    from queuekit.report.meaning import legacy_kind
    from queuekit.stacks.registry import load_stack, stack_names
    from scenarios import SCENARIOS

    undeclared = sorted({f"{sc.name}: {key} (looks like {legacy_kind(key)})" for sc in SCENARIOS for name in stack_names()
                         for key in sc.expected(name, load_stack(name).capabilities)
                         if legacy_kind(key) != "info" and key not in sc.kinds})
    assert not undeclared, "declare kinds= on these scenarios: " + "; ".join(undeclared)


def test_a_scenario_declaring_an_unknown_kind_fails_when_defined():
    import pytest

    from queuekit.suite.model import Scenario

    with pytest.raises(ValueError, match="unknown kind"):
        Scenario("x", "c", "q", "signup", run=lambda ctx: {}, expect=[], kinds={"lost": "bad"})
