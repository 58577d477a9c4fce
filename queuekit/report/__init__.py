"""The comparison as a terminal matrix, results.json, report.md and a self-contained report.html (html.py).

Everything is rendered from the JSON form of the comparison (results.json), so
`queuekit report results.json` rebuilds the reports of any run, for any number of stacks.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from queuekit.suite.compare import Comparison
from queuekit.suite.concepts import concepts_of

from . import versions
from .compact import families as families_of
from .compact import per_family, shown_numbers
from .html import html_report as _html_report
from .meaning import MEANINGS, broker_versions, cell_of, differences, key_numbers, meaning, same_everywhere, short


def as_results(cmp: Comparison | dict[str, Any]) -> dict[str, Any]:
    """The JSON form, exactly as results.json holds it: every report is rendered from this."""
    return json.loads(json.dumps(cmp.as_dict() if isinstance(cmp, Comparison) else cmp, default=str))


def html_report(cmp: Comparison | dict[str, Any], bench: dict[str, Any] | None = None) -> str:
    return _html_report(as_results(cmp), bench)


TERMINAL_STYLE = {"lost": "bold red", "order": "yellow", "refused": "blue", "designed": "default", "error": "dim"}
SYMBOL = {"lost": "L", "order": "O", "refused": "R", "designed": ".", "error": "E"}


def _terminal_cell(cell: dict[str, Any] | None, key: str | None) -> tuple[str, str]:
    """(markup, the value): the meaning's symbol (+ "!" when not as expected) over the row's number."""
    if cell is None or cell.get("skipped"):
        return "-", ""
    m, _ = meaning(cell)
    bad = "!" if cell["mismatches"] or cell.get("error") else ""
    observed = cell.get("observed") or {}
    value = short(observed[key]) if key in observed else ""
    return f"[{TERMINAL_STYLE[m]}]{SYMBOL[m]}{bad}[/{TERMINAL_STYLE[m]}]\n{value}", value


def terminal_matrix(cmp: Comparison | dict[str, Any], width: int = 100) -> Group:
    """A compact matrix that reads in a log at ``width`` columns: a symbol per cell (its meaning, ``!`` when it
    differs from the scenario's expectation) over the one number that differs, named under the scenario.
    Values are folded, never cut to "…"; every other number is in report.md."""
    results = as_results(cmp)
    stacks = results["stacks"]
    differ = {d["scenario"]: d["keys"] for d in differences(results)}
    shown = shown_numbers(results)
    rows = [(sc["name"], shown[sc["name"]]) for sc in results["scenarios"]]
    grid = {name: [_terminal_cell(cell_of(results, name, stack), key) for stack in stacks] for name, key in rows}
    need = [max([2, *(len(grid[name][i][1]) for name, _ in rows)]) for i in range(len(stacks))]
    first = max([len(n) + 7 for n, _ in rows] + [len(k or "") + 2 for _, k in rows] + [17])
    # names that do not fit at ``width`` become numbered columns, named under the table
    numbered = first + sum(max(len(s), w) + 1 for s, w in zip(stacks, need, strict=True)) > width
    table = Table(title=f"queuekit compare — observed on real brokers ({results['seconds']:.0f}s)", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=0, title_justify="left")  # the box puts a space between columns
    table.add_column("scenario / number", overflow="fold")
    for i, (stack, w) in enumerate(zip(stacks, need, strict=True), 1):
        table.add_column(str(i) if numbered else stack, overflow="fold", min_width=w)
    for name, key in rows:
        table.add_row(f"{name}{'' if name in differ else ' [dim](same)[/dim]'}\n  [dim]{key or ''}[/dim]",
                      *(markup for markup, _ in grid[name]))
    legend = ("  ".join(f"{SYMBOL[m]} {label}" for m, (label, _, _) in MEANINGS.items())
              + "  ! differs from the scenario's expectation; the number is the one named under the scenario "
              "(one that differs between the stacks); every number: report.md")
    parts: list[Any] = [table, Text(legend, style="dim")]
    if numbered:
        parts.insert(1, Text("columns: " + "  ".join(f"{i}={s}" for i, s in enumerate(stacks, 1))))
    return Group(*parts)


def _md_cell(cell: dict[str, Any] | None, hot: list[str] | None = None) -> str:
    if cell is None:
        return "-"
    m, _ = meaning(cell)
    label = {"lost": "**LOST/DUPLICATED**", "order": "**ORDER/REPEATED**", "refused": "**REFUSED (safe)**",
             "designed": "as designed", "error": "**ERROR**"}[m]
    check = "✓" if cell["mismatches"] == [] and not cell.get("error") else "✗ differs from expectation"
    nums = [f"{'**' if hot and k in hot else ''}{k}={short(v)}{'**' if hot and k in hot else ''}"
            for k, v in key_numbers(cell).items()]
    return f"{label} {check}<br>" + "<br>".join(nums)


def markdown(cmp: Comparison | dict[str, Any]) -> str:
    """report.md: where the stacks differ first (with the guide's claim beside it), then every cell."""
    from .html import guide_rows

    results = as_results(cmp)
    stacks = results["stacks"]
    claims = {r["scenario"]: r for r in guide_rows(results)}
    fam = families_of(results)
    lines = [f"# queuekit: where the stacks differ ({results['started']})", "",
             f"{len(results['scenarios'])} scenarios on {len(stacks)} stacks against real brokers, "
             f"{results['seconds']:.0f} s (brokers: {broker_versions(results) or 'none'}). "
             "A cell says what its numbers mean (LOST/DUPLICATED, ORDER/REPEATED, "
             "REFUSED (safe), as designed) and, separately, whether it matched the scenario's declared "
             "expectation (✓ / ✗).", "",
             "## Where the stacks differ", "",
             "| scenario | " + " | ".join(stacks) + " | when to use which |",
             "|---|" + "---|" * (len(stacks) + 1)]
    for d in differences(results):
        claim = claims.get(d["scenario"])
        why = f"**{claim['need']}**: {claim['verdict']}" if claim else ""
        lines.append(f"| {d['scenario']} | " + " | ".join(_md_cell(d["cells"].get(s), d["keys"]) for s in stacks)
                     + f" | {why} |")
    lines += ["", "## The same on every stack", ""]
    for name in same_everywhere(results):
        cell = next((c for c in results["cells"] if c["scenario"] == name), None)
        if cell:
            lines.append(f"- **{name}**: " + ", ".join(f"{k} {short(v)}" for k, v in key_numbers(cell).items()))
    if changes := versions.section(results):  # compare --rabbitmq 3.10,4: the same columns on two versions
        lines += ["", changes.rstrip()]
    lines += ["", "## Every cell", "",
              "| scenario | concept | " + " | ".join(stacks) + " |", "|---|---|" + "---|" * len(stacks)]
    for sc in results["scenarios"]:
        lines.append(f"| {sc['name']} | {sc['concept']} | "
                     + " | ".join(_md_cell(cell_of(results, sc["name"], s)) for s in stacks) + " |")
    lines += ["", "## When to use which (from this run's observations)", ""]
    for row in claims.values():
        evidence = ", ".join(f"{s} {short(v)}" for s, v in row["values"].items())
        families = "; ".join(f"{f}: {'all alike' if best is None else ', '.join(best) or 'none'}"
                             for f, best in per_family(row, fam).items())
        decide = ", ".join(concepts_of(row["scenario"]))
        lines.append(f"- **{row['need']}** — {row['verdict']}." + (f" Best per family: {families}." if families else "")
                     + f" Evidence: `{row['scenario']}` {row['metric']}: {evidence}."
                     + (f" The lines that decide it: {decide} (`queuekit code <workload>`)." if decide else ""))
    mismatched = [c for c in results["cells"] if c["mismatches"] or c.get("error")]
    if mismatched:
        lines += ["", "## Cells that differ from their expectation", ""]
        lines += [f"- {c['scenario']} on {c['stack']}: {'; '.join(c['mismatches']) or c['error']}" for c in mismatched]
    lines += ["", "<details><summary>Versions and settings</summary>", "", "```json",
              json.dumps(results.get("environment", {}), indent=2), "```", "", "</details>", ""]
    return "\n".join(lines)


def write_reports(cmp: Comparison | dict[str, Any], outdir: Path, bench: dict[str, Any] | None = None) -> dict[str, Path]:
    """results.json, report.md and report.html; the reports are built from the JSON alone."""
    results = as_results(cmp)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": outdir / "results.json", "md": outdir / "report.md", "html": outdir / "report.html"}
    paths["json"].write_text(json.dumps(results, indent=2, default=str))
    results = json.loads(paths["json"].read_text())  # exactly what a later `queuekit report` reads
    paths["md"].write_text(markdown(results))
    paths["html"].write_text(_html_report(results, bench))
    return paths
