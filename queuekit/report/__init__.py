"""The comparison as a terminal matrix, results.json, report.md and a self-contained report.html (html.py).

Everything is rendered from the JSON form of the comparison (results.json), so
`queuekit report results.json` rebuilds the reports of any run, for any number of stacks.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from queuekit.suite.compare import Comparison

from .html import html_report as _html_report
from .meaning import MEANINGS, broker_versions, cell_of, differences, key_numbers, meaning, same_everywhere, short

MAX_NUMBERS = 4  # key numbers shown per cell in the terminal


def as_results(cmp: Comparison | dict[str, Any]) -> dict[str, Any]:
    """The JSON form, exactly as results.json holds it: every report is rendered from this."""
    return json.loads(json.dumps(cmp.as_dict() if isinstance(cmp, Comparison) else cmp, default=str))


def html_report(cmp: Comparison | dict[str, Any], bench: dict[str, Any] | None = None) -> str:
    return _html_report(as_results(cmp), bench)


TERMINAL_STYLE = {"lost": "bold red", "order": "yellow", "refused": "blue", "designed": "default", "error": "dim"}


def terminal_matrix(cmp: Comparison) -> Table:
    """Coloured by meaning (red lost/duplicated, yellow order, blue refused-but-safe); ✓/✗ = expectation check."""
    results = as_results(cmp)
    table = Table(title=f"queuekit compare — observed on real brokers ({results['seconds']:.0f}s)", show_lines=True)
    table.add_column("scenario (concept)", style="bold")
    for stack in results["stacks"]:
        table.add_column(stack)
    for sc in results["scenarios"]:
        row = [f"{sc['name']}\n[dim]{sc['concept']}[/dim]"]
        for stack in results["stacks"]:
            cell = cell_of(results, sc["name"], stack)
            if cell is None:
                row.append("-")
                continue
            m, _ = meaning(cell)
            check = "[dim]✓[/dim]" if not cell["mismatches"] and not cell.get("error") else "[reverse]✗ differs[/reverse]"
            body = f"[{TERMINAL_STYLE[m]}]{MEANINGS[m][0]}[/{TERMINAL_STYLE[m]}] {check} {cell['seconds']:.1f}s\n"
            body += "\n".join(f"{k}={short(v)}" for k, v in list(key_numbers(cell).items())[:MAX_NUMBERS])
            if cell.get("error"):
                body += f"\n[red]{cell['error'][:80]}[/red]"
            row.append(body)
        table.add_row(*row)
    return table


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
        why = f"**{claim['need']}**: {claim['verdict']}. {claim['why']}" if claim else ""
        lines.append(f"| {d['scenario']} | " + " | ".join(_md_cell(d["cells"].get(s), d["keys"]) for s in stacks)
                     + f" | {why} |")
    lines += ["", "## The same on every stack", ""]
    for name in same_everywhere(results):
        cell = next((c for c in results["cells"] if c["scenario"] == name), None)
        if cell:
            lines.append(f"- **{name}**: " + ", ".join(f"{k} {short(v)}" for k, v in key_numbers(cell).items()))
    lines += ["", "## Every cell", "",
              "| scenario | concept | " + " | ".join(stacks) + " |", "|---|---|" + "---|" * len(stacks)]
    for sc in results["scenarios"]:
        lines.append(f"| {sc['name']} | {sc['concept']} | "
                     + " | ".join(_md_cell(cell_of(results, sc["name"], s)) for s in stacks) + " |")
    lines += ["", "## When to use which (from this run's observations)", ""]
    for row in claims.values():
        evidence = ", ".join(f"{s} {short(v)}" for s, v in row["values"].items())
        lines.append(f"- **{row['need']}** — {row['verdict']}. Evidence: `{row['scenario']}` "
                     f"{row['metric']}: {evidence}. Why: {row['why']}.")
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
