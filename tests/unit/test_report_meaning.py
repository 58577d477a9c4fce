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
