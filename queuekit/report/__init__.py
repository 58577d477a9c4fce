"""The comparison as a terminal matrix, results.json, report.md and a self-contained report.html."""
from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from queuekit.suite.compare import Comparison
from queuekit.suite.guide import guide
from queuekit.suite.runner import CellResult

MAX_NUMBERS = 4  # key numbers shown per cell


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))[:24]
    return str(value)


def cell_numbers(cell: CellResult) -> list[str]:
    """The observations the scenario has expectations about: its key numbers."""
    keys = [k for k in cell.expected if k in cell.observed][:MAX_NUMBERS]
    return [f"{k}={_short(cell.observed[k])}" for k in keys]


def cell_mark(cell: CellResult) -> str:
    return "error" if cell.error else ("as expected" if cell.ok else "DIFFERS")


def terminal_matrix(cmp: Comparison) -> Table:
    table = Table(title=f"queuekit compare — observed on real brokers ({cmp.seconds:.0f}s)", show_lines=True)
    table.add_column("scenario (concept)", style="bold")
    for stack in cmp.stacks:
        table.add_column(stack)
    for sc in cmp.scenarios:
        row = [f"{sc['name']}\n[dim]{sc['concept']}[/dim]"]
        for stack in cmp.stacks:
            cell = cmp.cell(sc["name"], stack)
            if cell is None:
                row.append("-")
                continue
            colour = "red" if not cell.ok else "green"
            body = f"[{colour}]{cell_mark(cell)}[/{colour}] {cell.seconds:.1f}s\n" + "\n".join(cell_numbers(cell))
            if cell.error:
                body += f"\n[red]{cell.error[:80]}[/red]"
            row.append(body)
        table.add_row(*row)
    return table


def markdown(cmp: Comparison) -> str:
    lines = [f"# queuekit comparison ({cmp.started})", "",
             f"Every scenario on every stack against real brokers, {cmp.seconds:.0f} s in all. "
             "Each cell: whether the observation matched the scenario's declared expectation, its time, "
             "and its key numbers.", "",
             "| scenario | concept | " + " | ".join(cmp.stacks) + " |",
             "|---|---|" + "---|" * len(cmp.stacks)]
    for sc in cmp.scenarios:
        cells = []
        for stack in cmp.stacks:
            cell = cmp.cell(sc["name"], stack)
            cells.append("-" if cell is None else
                         f"**{cell_mark(cell)}** {cell.seconds:.1f}s<br>" + "<br>".join(cell_numbers(cell)))
        lines.append(f"| {sc['name']} | {sc['concept']} | " + " | ".join(cells) + " |")
    lines += ["", "## When to use which (from this run's observations)", ""]
    for row in guide(cmp):
        evidence = ", ".join(f"{s} {_short(v)}" for s, v in row["values"].items())
        lines.append(f"- **{row['need']}** — {row['verdict']}. Evidence: `{row['scenario']}` "
                     f"{row['metric']}: {evidence}. Why: {row['why']}.")
    mismatched = [c for c in cmp.cells if not c.ok]
    if mismatched:
        lines += ["", "## Cells that differ from their expectation", ""]
        lines += [f"- {c.scenario} on {c.stack}: {'; '.join(c.mismatches) or c.error}" for c in mismatched]
    env = cmp.environment
    lines += ["", "## Configuration", "", "```json", json.dumps(env, indent=2), "```", ""]
    return "\n".join(lines)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def charts(cmp: Comparison) -> list[tuple[str, str]]:
    """Inline SVG charts: time per cell, and lost/duplicate/violation counts per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [sc["name"] for sc in cmp.scenarios]
    width = 0.8 / max(len(cmp.stacks), 1)
    out = []
    for title, value in (
        ("Seconds per scenario (start, run, settle, stop)", lambda c: c.seconds),
        ("Lost + duplicated + out-of-order messages observed",
         lambda c: sum(v for k, v in c.observed.items()
                       if isinstance(v, int) and not isinstance(v, bool)
                       and any(w in k for w in ("lost", "duplicates", "violations", "missing")))),
    ):
        fig, ax = plt.subplots(figsize=(10, 3.6))
        for i, stack in enumerate(cmp.stacks):
            ys = [value(c) if (c := cmp.cell(n, stack)) else 0 for n in names]
            ax.bar([x + i * width for x in range(len(names))], ys, width, label=stack)
        ax.set_xticks([x + width * (len(cmp.stacks) - 1) / 2 for x in range(len(names))])
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.legend()
        out.append((title, _svg(fig)))
        plt.close(fig)
    return out


def html_report(cmp: Comparison) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(s)}</th>" for s in cmp.stacks)
    rows = []
    for sc in cmp.scenarios:
        tds = []
        for stack in cmp.stacks:
            cell = cmp.cell(sc["name"], stack)
            if cell is None:
                tds.append("<td>-</td>")
                continue
            cls = "ok" if cell.ok else "bad"
            nums = "<br>".join(esc(n) for n in cell_numbers(cell))
            err = f"<br><small>{esc(cell.error[:160])}</small>" if cell.error else ""
            tds.append(f'<td class="{cls}"><b>{esc(cell_mark(cell))}</b> {cell.seconds:.1f}s<br>{nums}{err}</td>')
        rows.append(f"<tr><th>{esc(sc['name'])}<br><small>{esc(sc['concept'])}</small></th>{''.join(tds)}</tr>")
    guide_items = "".join(
        f"<li><b>{esc(r['need'])}</b> — {esc(r['verdict'])}. Evidence: <code>{esc(r['scenario'])}</code> "
        f"{esc(r['metric'])}: {esc(', '.join(f'{s} {_short(v)}' for s, v in r['values'].items()))}. "
        f"<i>{esc(r['why'])}</i></li>" for r in guide(cmp))
    figures = "".join(f'<figure class="chart"><figcaption>{esc(t)}</figcaption>{svg}</figure>' for t, svg in charts(cmp))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>queuekit comparison {esc(cmp.started)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table.matrix {{ border-collapse: collapse; }}
.matrix td, .matrix th {{ border: 1px solid #ccc; padding: .4rem .6rem; vertical-align: top; font-size: .85rem; }}
td.ok {{ background: #eef8ee; }} td.bad {{ background: #fbeaea; }}
figure.chart svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>queuekit comparison</h1>
<p>Started {esc(cmp.started)}; {cmp.seconds:.0f} s on real brokers. Each cell: matched the declared expectation or not,
its time, its key numbers.</p>
<table class="matrix" id="matrix"><tr><th>scenario</th>{head}</tr>{''.join(rows)}</table>
<h2>When to use which</h2><ul id="guide">{guide_items}</ul>
<h2>Charts</h2>{figures}
<h2>Configuration</h2><pre>{esc(json.dumps(cmp.environment, indent=2))}</pre>
</body></html>
"""


def write_reports(cmp: Comparison, outdir: Path) -> dict[str, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": outdir / "results.json", "md": outdir / "report.md", "html": outdir / "report.html"}
    paths["json"].write_text(json.dumps(cmp.as_dict(), indent=2, default=str))
    paths["md"].write_text(markdown(cmp))
    paths["html"].write_text(html_report(cmp))
    return paths
