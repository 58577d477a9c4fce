"""report.html's compact matrix and code view in headless Chromium, for every registered stack (no broker:
``tests.helpers.results_over_registry``)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from queuekit.report import write_reports
from queuekit.stacks.registry import stack_names
from tests.helpers import results_over_registry

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _dom(chromium: str, url: str, tmp_path, width: int) -> str:
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / f'profile-{width}'}",
                           f"--window-size={width},2000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert "<table" in done.stdout, done.stderr[-1000:]
    return done.stdout


@pytest.mark.parametrize("width", [1300, 800])
def test_compact_matrix_and_code_view_render_every_stack_in_chromium(tmp_path, width):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    paths = write_reports(results_over_registry(), tmp_path)
    # a code link's target: the page opens on that cell, with its detail shown by the script
    dom = _dom(chromium, paths["html"].as_uri() + "#cell-replay-kafka", tmp_path, width)
    compact = dom[dom.index('id="compact"'):dom.index("</table>", dom.index('id="compact"'))]
    assert sorted(re.findall(r'<th class="stack" data-stack="([^"]+)"', compact)) == sorted(stack_names())
    code = dom[dom.index('id="code"'):dom.index("</table>", dom.index('id="code"'))]
    assert sorted(set(re.findall(r'<td id="code-([a-z_]+)-ack-timing"', code))) == sorted(stack_names())
    detail = dom[dom.index('id="cell-detail"'):dom.index("</div>", dom.index('id="cell-detail"'))]
    assert "<b>replay on kafka</b>" in detail and 'href="#code-kafka-offset-commit"' in detail
    assert dom.count('<tr data-workload="signup">') == 2  # handler and topology of the first workload
    assert dom.count('<tr data-workload="tracking" class="off">') == 2  # the others hidden until chosen
