"""What changes from one broker version to another: two results.json of the same matrix, cell by cell.

``queuekit compare --rabbitmq 3.10`` and ``queuekit compare --rabbitmq 4`` each write a results.json;
``queuekit report NEW --versus OLD`` puts the cells that differ side by side (what they mean, whether
they met their expectation, their key numbers), under the broker versions each run recorded.
"""
from __future__ import annotations

from typing import Any

from .meaning import broker_versions, cell_of, key_numbers, meaning, short


def _look(cell: dict[str, Any]) -> dict[str, Any]:
    ok = not cell.get("mismatches") and not cell.get("error")
    return {"meaning": meaning(cell)[0], "ok": ok, "numbers": key_numbers(cell)}


def version_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The (scenario, stack) cells both runs hold whose meaning, check or key numbers differ, in ``after``'s order."""
    rows = []
    for cell in after["cells"]:
        old = cell_of(before, cell["scenario"], cell["stack"])
        if old is None:
            continue
        was, now = _look(old), _look(cell)
        if was != now:
            changed = sorted(k for k in {*was["numbers"], *now["numbers"]}
                             if was["numbers"].get(k) != now["numbers"].get(k))
            rows.append({"scenario": cell["scenario"], "stack": cell["stack"], "before": was, "after": now,
                         "changed": changed})
    return rows


def _md(look: dict[str, Any], changed: list[str]) -> str:
    nums = ", ".join(f"**{k}={short(v)}**" if k in changed else f"{k}={short(v)}" for k, v in look["numbers"].items())
    return f"{look['meaning']} {'✓' if look['ok'] else '✗'} {nums}".strip()


def version_section(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Markdown: a header naming both runs' broker versions, then one row per cell that differs."""
    rows = version_changes(before, after)
    same = sum(1 for c in after["cells"] if cell_of(before, c["scenario"], c["stack"])) - len(rows)
    lines = [f"## What changes from {broker_versions(before) or '?'} to {broker_versions(after) or '?'}", "",
             f"{len(rows)} cells differ, {same} are the same (numbers that changed in bold).", ""]
    if rows:
        lines += ["| scenario | stack | before | after |", "|---|---|---|---|"]
        lines += [f"| {r['scenario']} | {r['stack']} | {_md(r['before'], r['changed'])} | {_md(r['after'], r['changed'])} |"
                  for r in rows]
    return "\n".join(lines) + "\n"
