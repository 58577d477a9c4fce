"""`queuekit compare` end to end on a small slice, and its HTML report in a real headless browser."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def report_dir(kit, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    done = subprocess.run(
        [sys.executable, "-m", "queuekit", "compare", "--stack", "dramatiq", "--stack", "kafka",
         "--scenario", "replay", "--format", "markdown", "--out", str(out),
         "--rabbitmq", "3.10"],  # one version (both: tests/e2e/test_compare_versions.py)
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| replay |" in done.stdout  # the matrix printed to the terminal
    [run] = list(out.iterdir())
    return run


def test_results_json_holds_every_cell_and_its_configuration(report_dir):
    results = json.loads((report_dir / "results.json").read_text())
    cells = {(c["scenario"], c["stack"]): c for c in results["cells"]}
    assert set(cells) == {("replay", "dramatiq"), ("replay", "kafka")}
    assert cells[("replay", "kafka")]["observed"]["replayed"] == 20
    assert cells[("replay", "dramatiq")]["observed"]["replayed"] == 0
    assert results["environment"]["brokers"]["kafka"]["version"]
    assert "dramatiq" in results["environment"]["libraries"]


def test_html_report_renders_matrix_and_charts_in_chromium(report_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           (report_dir / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert '<table class="matrix" id="matrix">' in dom, done.stderr[-1000:]
    # differences first: replay (kafka replayed 20, dramatiq 0) leads the page, the full matrix comes later
    assert dom.index('id="differences"') < dom.index('id="matrix"')
    differ = dom[dom.index('id="differences"'):dom.index("</tbody>", dom.index('id="differences"'))]
    assert 'id="cell-replay-kafka"' in differ and 'id="cell-replay-dramatiq"' in differ  # the compact matrix
    guide = dom[dom.index('id="guide"'):dom.index("</ul>", dom.index('id="guide"'))]
    assert "Replay history for a new consumer" in guide and 'href="#cell-replay-kafka"' in guide  # linked evidence
    # the code view: both stacks' offset/ack lines, linked to the cells they explain; the JS showed one workload
    assert 'id="code-kafka-offset-commit"' in dom and 'href="#cell-replay-kafka"' in dom
    assert '<tr data-workload="video" class="off">' in dom and '<tr data-workload="signup">' in dom
    assert dom.count("<svg") >= 1  # the outcome chart, inline
    assert "When to use which" in dom and "<details>" in dom  # versions and settings, collapsed
