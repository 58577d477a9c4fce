"""The reports, built from a comparison run on StubStack variants (no broker): matrix, JSON, markdown, HTML."""
from __future__ import annotations

import io
import json
from html.parser import HTMLParser

import pytest
from rich.console import Console

from queuekit.core.config import Settings
from queuekit.report import html_report, markdown, terminal_matrix, write_reports
from queuekit.stacks import registry
from queuekit.stacks.stub import StubStack
from queuekit.suite.compare import Comparison, compare
from scenarios import BY_NAME

LOG = StubStack.variant("stub-log", replayable=True)
LIAR = StubStack.variant("stub-liar", replayable=True, behaves={"replayable": False})


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Comparison:
    with pytest.MonkeyPatch.context() as mp:
        for cls in (StubStack, LOG, LIAR):
            mp.setitem(registry.STACKS, cls.name, cls)
        return compare(Settings.from_env(), [BY_NAME["fan-out"], BY_NAME["replay"]], ["stub", "stub-log", "stub-liar"],
                       tmp_path_factory.mktemp("compare"))


def test_results_json_holds_every_cell(result, tmp_path):
    paths = write_reports(result, tmp_path)
    doc = json.loads(paths["json"].read_text())
    cells = {(c["scenario"], c["stack"]): c for c in doc["cells"]}
    assert len(cells) == 6 and doc["stacks"] == ["stub", "stub-log", "stub-liar"]
    assert cells[("replay", "stub-log")]["observed"]["replayed"] == 20
    assert cells[("replay", "stub-liar")]["mismatches"] == ["replayed: observed 0, expected == 20"]
    assert cells[("fan-out", "stub")]["observed"]["broker_messages_per_event"] == 1
    assert doc["environment"]["libraries"] == {}  # the in-memory stubs declare no library (Stack.libraries)
    assert paths["md"].read_text() == markdown(result) and paths["html"].stat().st_size > 0


def test_markdown_leads_with_differences_and_marks_the_check_apart_from_the_meaning(result):
    md = markdown(result)
    assert md.index("## Where the stacks differ") < md.index("## Every cell")
    differ = md[md.index("## Where the stacks differ"):md.index("## The same on every stack")]
    assert "| replay |" in differ and "| fan-out |" not in differ  # replayed 0 / 20 / 0; fan-out alike
    every = md[md.index("## Every cell"):]
    [replay] = [line for line in every.splitlines() if line.startswith("| replay |")]
    cells = [c.strip() for c in replay.split("|")[3:-1]]
    assert cells[0].startswith("as designed ✓") and "replayed=0" in cells[0]
    assert cells[1].startswith("as designed ✓") and "replayed=20" in cells[1]
    assert cells[2].startswith("as designed ✗ differs from expectation")  # neutral meaning, check failed
    assert "- replay on stub-liar: replayed: observed 0, expected == 20" in md
    assert "**Replay history for a new consumer or a bug fix** — best observed: stub-log." in md


class _Cells(HTMLParser):
    """The cells of the full matrix (table id=matrix) and the inline charts."""

    def __init__(self):
        super().__init__()
        self.in_matrix = False
        self.classes: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.in_matrix = attrs.get("id") == "matrix"
        if tag == "td" and self.in_matrix:
            self.classes.append(attrs.get("class", ""))
        self.svgs += tag == "svg"


def test_html_report_colours_by_meaning_with_the_check_as_a_mark(result):
    page = html_report(result)
    parsed = _Cells()
    parsed.feed(page)
    assert parsed.classes == ["m-designed"] * 6  # fan-out x3, replay x3: nothing lost, nothing out of order
    assert page.count("✗ differs from expectation") == 2  # the liar stands out, in the differences and the matrix
    assert page.index('id="differences"') < page.index('id="matrix"')
    assert parsed.svgs >= 1 and 'id="guide"' in page and "<details>" in page


def test_terminal_matrix_shows_every_stack_and_mark(result):
    console = Console(record=True, width=100)
    console.print(terminal_matrix(result))
    text = console.export_text()
    assert all(name in text for name in ("stub-log", "stub-liar", "fan-out", "replay"))
    lines = [line.strip() for line in text.splitlines()]
    at = next(i for i, line in enumerate(lines) if line.startswith("replay"))
    assert lines[at].split()[1:] == [".", ".", ".!"]  # the meaning's symbol; ! = not what the scenario expected
    assert lines[at + 1].split() == ["replayed", "0", "20", "0"]  # under it, the number that differs, named
    assert "replayed" in text and "(same)" in text and ". as designed" in text  # the number's name, the legend


def test_terminal_matrix_in_a_narrow_log_numbers_its_columns_and_never_cuts_a_value():
    many = {"started": "t", "seconds": 1, "stacks": [f"a_long_stack_name_{i}" for i in range(12)],
            "scenarios": [{"name": "more-consumers-than-partitions", "concept": "c", "question": "q"}],
            "cells": [{"scenario": "more-consumers-than-partitions", "stack": f"a_long_stack_name_{i}",
                       "observed": {"workers_with_work": 1000 + i}, "expected": {"workers_with_work": ">= 1"},
                       "mismatches": [], "seconds": 1} for i in range(12)]}
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(terminal_matrix(many))
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 100
    values = next(line for line in text.splitlines() if "workers_with_work" in line).split()[1:]
    assert values == [str(1000 + i) for i in range(12)] and "12=a_long_stack_name_11" in text
