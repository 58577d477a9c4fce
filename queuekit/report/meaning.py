"""What a cell's numbers MEAN for a design review, and where the stacks differ — from results.json alone.

Every function here takes the JSON form of the comparison (``Comparison.as_dict()``:
``stacks``, ``scenarios``, ``cells`` with ``observed``/``expected``/``mismatches``),
so a report can be rebuilt from any results.json, for any number of stacks.

Meaning, worst first (the colour of a cell; the expectation check is a separate mark), from the KIND
each observation's scenario declares (``Scenario.kinds``, carried in results.json as each cell's ``kinds``):

  lost       red     a message lost or an effect duplicated (kind loss or duplicate, count > 0)
  order      amber   per-key order violated (kind order, > 0), or the same work started again (kind retry, > 1)
  refused    blue    the broker refused work and nothing was lost (kind refused, > 0): back-pressure, safe
  designed   neutral everything else (kind info, or undeclared): what the design promises happened

A results.json written before cells carried ``kinds`` is read with the key-name conventions those runs
were coloured by (``legacy_kind``), so an old run's report rebuilds as it was.
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


def legacy_kind(key: str) -> str:
    """The kind an observation had by its name alone, before scenarios declared kinds (old results.json)."""
    if key == "lost" or key.endswith("_missing"):
        return "loss"
    if key in ("duplicates", "duplicate_effects") or key.endswith("_duplicates"):
        return "duplicate"
    if key == "order_violations":
        return "order"
    if key.endswith("_attempts"):
        return "retry"
    return "refused" if key == "publisher_refused" else "info"


def kinds_of(cell: dict[str, Any]) -> dict[str, str]:
    """Observation -> kind: as the scenario declared it, or by name for a cell from before declarations."""
    observed = cell.get("observed") or {}
    if "kinds" in cell:
        return {k: (cell["kinds"] or {}).get(k, "info") for k in observed}
    return {k: legacy_kind(k) for k in observed}


def meaning(cell: dict[str, Any]) -> tuple[str, list[str]]:
    """(meaning, the observations that decided it) for one cell."""
    if cell.get("error"):
        return "error", [cell["error"][:160]]
    observed = cell.get("observed") or {}
    kinds = kinds_of(cell)

    def of(*wanted: str, above: int = 0) -> list[str]:
        return [f"{k}={v}" for k, v in observed.items() if kinds[k] in wanted and _count(v) > above]

    if lost := of("loss", "duplicate"):
        return "lost", lost
    if order := of("order") + of("retry", above=1):
        return "order", order
    if refused := of("refused"):
        return "refused", refused
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


def broker_versions(results: dict[str, Any]) -> str:
    """"rabbitmq 4.3.6 (Debian sid root, …), kafka 4.4.0": the versions the cells ran on, for a report's header."""
    found = results.get("environment", {}).get("brokers", {})
    return ", ".join(f"{name} {b.get('version') or '?'}" + (f" ({b['detail']})" if b.get("detail") else "")
                     for name, b in found.items())
