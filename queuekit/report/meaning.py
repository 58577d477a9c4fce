"""What a cell's numbers MEAN for a design review, and where the stacks differ — from results.json alone.

Every function here takes the JSON form of the comparison (``Comparison.as_dict()``:
``stacks``, ``scenarios``, ``cells`` with ``observed``/``expected``/``mismatches``),
so a report can be rebuilt from any results.json, for any number of stacks.

Meaning, worst first (the colour of a cell; the expectation check is a separate mark):

  lost       red     a message lost or an effect duplicated (lost, *_missing, duplicates, duplicate_effects)
  order      amber   per-key order violated, or the same work started again (order_violations, *_attempts > 1)
  refused    blue    the broker refused work and nothing was lost (publisher_refused > 0): back-pressure, safe
  designed   neutral everything else: what the design promises happened
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MEANINGS = {
    "lost": ("lost or duplicated", "#fde2e1", "#b42318"),
    "order": ("order violated / work repeated", "#fdf0d5", "#b54708"),
    "refused": ("refused, nothing lost", "#e0ecfd", "#1d4ed8"),
    "designed": ("as designed", "#ffffff", "#374151"),
    "error": ("could not run", "#eeeeee", "#6b7280"),
}
RANK = {m: i for i, m in enumerate(MEANINGS)}
TOLERANT_SUFFIXES = ("_ms", "_mb", "_s", "_seconds", "rate")  # measured amounts: "differ" only if > 1.5x apart


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _is_loss(key: str) -> bool:
    return key == "lost" or key.endswith("_missing") or key in ("duplicates", "duplicate_effects") \
        or key.endswith("_duplicates")


def _is_order(key: str, value: Any) -> bool:
    return (key == "order_violations" and _count(value) > 0) or (key.endswith("_attempts") and _count(value) > 1)


def meaning(cell: dict[str, Any]) -> tuple[str, list[str]]:
    """(meaning, the observations that decided it) for one cell."""
    if cell.get("error"):
        return "error", [cell["error"][:160]]
    observed = cell.get("observed") or {}
    lost = [f"{k}={v}" for k, v in observed.items() if _is_loss(k) and _count(v) > 0]
    if lost:
        return "lost", lost
    order = [f"{k}={v}" for k, v in observed.items() if _is_order(k, v)]
    if order:
        return "order", order
    refused = _count(observed.get("publisher_refused"))
    if refused:
        return "refused", [f"publisher_refused={refused}"]
    return "designed", []


def key_numbers(cell: dict[str, Any], limit: int = 5) -> dict[str, Any]:
    """The observations the scenario has expectations about (its measurements), in its order."""
    observed = cell.get("observed") or {}
    return {k: observed[k] for k in (cell.get("expected") or {}) if k in observed}


def _differs(values: list[Any], key: str) -> bool:
    present = [v for v in values if v is not None]
    if len(set(map(repr, present))) <= 1:
        return False
    if key.endswith(TOLERANT_SUFFIXES) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        low, high = min(present), max(present)
        return high > 1.5 * max(low, 1)
    return True


def cell_of(results: dict[str, Any], scenario: str, stack: str) -> dict[str, Any] | None:
    return next((c for c in results["cells"] if c["scenario"] == scenario and c["stack"] == stack), None)


def differences(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per scenario: the key numbers whose values differ across stacks, each stack's meaning, worst first.

    A row is a scenario where at least one key number differs, or where the stacks' meanings differ.
    """
    rows = []
    for sc in results["scenarios"]:
        found = {s: cell_of(results, sc["name"], s) for s in results["stacks"]}
        cells = {s: c for s, c in found.items() if c is not None and not c.get("skipped")}
        if len(cells) < 2:
            continue
        keys = list(dict.fromkeys(k for c in cells.values() for k in key_numbers(c)))
        differing = [k for k in keys if _differs([(c.get("observed") or {}).get(k) for c in cells.values()], k)]
        meanings = {s: meaning(c) for s, c in cells.items()}
        if not differing and len({m for m, _ in meanings.values()}) == 1:
            continue
        rows.append({"scenario": sc["name"], "concept": sc.get("concept", ""), "question": sc.get("question", ""),
                     "keys": differing, "meanings": meanings, "cells": cells,
                     "worst": min(RANK[m] for m, _ in meanings.values())})
    rows.sort(key=lambda r: r["worst"])
    return rows


def same_everywhere(results: dict[str, Any]) -> list[str]:
    """Scenarios where every stack observed the same key numbers."""
    differ = {r["scenario"] for r in differences(results)}
    return [sc["name"] for sc in results["scenarios"] if sc["name"] not in differ]


def short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, separators=(",", ":"))[:24]
    return str(value)


def tally(results: dict[str, Any], stacks: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """Stack -> meaning -> number of cells: the report's first chart."""
    out = {s: {m: 0 for m in MEANINGS} for s in (stacks or results["stacks"])}
    for cell in results["cells"]:
        if cell["stack"] in out and not cell.get("skipped"):
            out[cell["stack"]][meaning(cell)[0]] += 1
    return out
