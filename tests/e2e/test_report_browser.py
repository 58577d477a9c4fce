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


@pytest.mark.parametrize("width", [1300, 800])
def test_a_dozen_columns_fit_the_window_and_the_filters_and_keyboard_work(tmp_path, width):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    base = results_over_registry()
    extra = [f"redis_like_{i}" for i in range(12 - len(base["stacks"]))]  # at least the dozen columns of a full run
    copies = [{**c, "stack": s} for s in extra for c in base["cells"] if c["stack"] == base["stacks"][0]]
    results = {**base, "stacks": base["stacks"] + extra, "cells": base["cells"] + copies,
               "families": {**base["families"], **{s: "redis" for s in extra}}}
    paths = write_reports(results, tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.goto(paths["html"].as_uri())
        box = page.locator("#compact").bounding_box()
        assert box and box["x"] + box["width"] <= width, f"the compact matrix is {box} wide in a {width} px window"
        assert page.locator("#compact th.stack").count() == len(results["stacks"]) >= 12
        names = page.locator("#compact th.scen").bounding_box()  # the scenario names keep a readable column
        assert names and names["width"] >= 150, f"the scenario column is {names} at {width} px"
        page.uncheck('[data-filter-family="redis"]')  # a family off: its columns and its header go
        on_redis = [s for s in results["stacks"] if results["families"][s] == "redis"]  # the real ones and the extra
        assert on_redis and page.locator("#compact th.stack:visible").count() == len(results["stacks"]) - len(on_redis)
        assert page.locator('#compact th.fam[data-family="redis"]').is_hidden()
        page.locator("#cell-replay-kafka button").focus()  # keyboard: Enter on a cell shows its detail
        page.keyboard.press("Enter")
        assert "replay on kafka" in page.locator("#cell-detail").inner_text()
        browser.close()
