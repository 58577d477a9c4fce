"""`queuekit compare` through click, on StubStack variants: no broker is started, the reports are written."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from queuekit import brokers
from queuekit.cli import cli
from queuekit.stacks import registry
from queuekit.stacks.stub import StubStack


@pytest.fixture
def stubs(monkeypatch):
    monkeypatch.setitem(registry.STACKS, "stub", StubStack)
    monkeypatch.setitem(registry.STACKS, "stub-log", StubStack.variant("stub-log", replayable=True))

    def no_brokers(*args, **kwargs):
        raise AssertionError("compare on in-memory stacks must not start brokers")

    monkeypatch.setattr(brokers, "up", no_brokers)


def test_compare_prints_json_and_writes_the_three_reports(stubs, tmp_path):
    done = CliRunner().invoke(cli, ["compare", "--stack", "stub", "--stack", "stub-log", "--scenario", "replay",
                                    "--format", "json", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert {(c["stack"], c["observed"]["replayed"]) for c in doc["cells"]} == {("stub", 0), ("stub-log", 20)}
    [run] = list(tmp_path.iterdir())
    assert sorted(p.name for p in run.iterdir()) == ["cells", "logs", "report.html", "report.md", "results.json"]


def test_compare_markdown_goes_to_stdout(stubs, tmp_path):
    done = CliRunner().invoke(cli, ["compare", "--stack", "stub", "--scenario", "replay", "--format", "markdown",
                                    "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "| replay |" in done.stdout and "as designed ✓" in done.stdout


def test_an_unknown_name_is_one_line_and_a_non_zero_exit(stubs, tmp_path):
    done = CliRunner().invoke(cli, ["compare", "--stack", "stub", "--scenario", "nope", "--out", str(tmp_path)])
    assert done.exit_code == 1 and "unknown scenario(s): nope" in done.output
    done = CliRunner().invoke(cli, ["compare", "--stack", "nope"])
    assert done.exit_code == 2 and "'nope' is not one of" in done.output and "stub-log" in done.output
