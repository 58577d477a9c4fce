"""The README's "where the stacks differ" table, rendered from a compare's results.json (never typed by hand).

``queuekit report RUN --readme README.md`` rewrites the block between ``<!-- matrix: start -->`` and
``<!-- matrix: end -->``; ``tests/unit/test_docs.py`` checks that the README's block is what the committed
run (``docs/results/latest/results.json``) renders, so the README cannot show numbers no run produced.
"""
from __future__ import annotations

import re
from typing import Any

from .compact import WORD, ordered, shown_numbers
from .meaning import cell_of, differences, meaning, short

START, END = "<!-- matrix: start -->", "<!-- matrix: end -->"
STYLE = {"lost": "**{}**", "order": "*{}*"}  # markdown can't colour: bold a loss, italicise order / work again


def _cell(results: dict[str, Any], scenario: str, stack: str, key: str | None) -> str:
    cell = cell_of(results, scenario, stack)
    if cell is None or cell.get("skipped"):
        return "–"
    m, _ = meaning(cell)
    raw = (cell.get("observed") or {}).get(key) if key else None
    if key and raw is None:  # the cell observed no such number (a scenario that does not apply: "n/a")
        return "n/a" + (" ✗" if cell.get("mismatches") or cell.get("error") else "")
    value = short(raw) if key else ""
    text = f"{WORD[m]} {value}".strip() if m != "designed" else value or WORD[m]
    return STYLE.get(m, "{}").format(text) + (" ✗" if cell.get("mismatches") or cell.get("error") else "")


def matrix(results: dict[str, Any]) -> str:
    """A markdown table: the scenarios where the stacks differ, the one number that differs per row."""
    stacks, shown = ordered(results), shown_numbers(results)
    cells = results["cells"]
    differ = sum(bool(c.get("mismatches")) for c in cells)
    failed = sum(bool(c.get("error")) for c in cells)
    lines = [f"`queuekit compare`, {results['started']}: {len(cells)} cells ({len(results['scenarios'])} scenarios x "
             f"{len(stacks)} stacks) in {results['seconds']:.0f} s, {differ} differ from their declared expectation, "
             f"{failed} could not run.", "",
             "| scenario (the number shown) | " + " | ".join(stacks) + " |", "|---|" + "---|" * len(stacks)]
    for row in differences(results):
        key = shown[row["scenario"]]
        lines.append(f"| {row['scenario']} ({key}) | "
                     + " | ".join(_cell(results, row["scenario"], s, key) for s in stacks) + " |")
    return "\n".join(lines)


def rewrite(readme: str, results: dict[str, Any]) -> str:
    """``readme`` with its matrix block replaced by the one ``results`` renders."""
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no {START} … {END} block to fill")
    return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{matrix(results)}\n{END}", readme,
                  count=1, flags=re.S)


def block(readme: str) -> str:
    return readme.split(START, 1)[1].split(END, 1)[0].strip()
