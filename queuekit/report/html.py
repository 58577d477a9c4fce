"""report.html for a design review, from results.json alone: where the stacks differ first, colour by meaning.

Order of the page: filters by family and stack; the compact matrix (rows
where the stacks differ first, ``compact.py``); when to use which (derived
from the run, best per family, each claim linking its evidence cells); the
code (``code_page.py``: the lines that decide each concept, linked both ways
with the cells); the charts; every cell in full; versions and settings
(collapsed). The colour of a cell is what its numbers mean (``meaning.py``);
whether it matched the scenario's declared expectation is a separate small
mark (✓ / ✗), so a surprising cell stands out even when its colour is
neutral. Self-contained (inline CSS, SVG and a little JS) and readable
printed to PDF.
"""
from __future__ import annotations

import html
import json
from types import SimpleNamespace
from typing import Any

from queuekit.suite.guide import guide
from queuekit.suite.versions import SEP

from . import charts, code_page, compact, versions
from .meaning import MEANINGS, broker_versions, cell_of, key_numbers, meaning, short

esc = html.escape


class _View:
    """What ``suite.guide`` reads (``stacks``, ``cell(...).observed``), over results.json."""

    def __init__(self, results: dict[str, Any]):
        self.results, self.stacks = results, results["stacks"]

    def cell(self, scenario: str, stack: str):
        c = cell_of(self.results, scenario, stack)
        return SimpleNamespace(observed=c.get("observed") or {}) if c else None


def guide_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return guide(_View(results), compact.families(results))


def _check(cell: dict[str, Any]) -> str:
    """The expectation check: a small mark, its detail on hover and in print."""
    if cell.get("error"):
        return '<span class="check bad" title="could not run">!</span>'
    if cell.get("mismatches"):
        why = "; ".join(cell["mismatches"])
        return f'<span class="check bad" title="{esc(why)}">✗ differs from expectation</span>'
    return '<span class="check ok" title="matched the scenario\'s declared expectation">✓</span>'


def _cell(cell: dict[str, Any] | None, emphasise: list[str] | None = None) -> str:
    if cell is None:
        return "<td>–</td>"
    if cell.get("skipped"):
        return f'<td class="m-designed"><small>skipped: {esc(cell["skipped"])}</small></td>'
    m, why = meaning(cell)
    nums = []
    for k, v in key_numbers(cell).items():
        text = f"{esc(k)} <b>{esc(short(v))}</b>"
        nums.append(f'<li class="{"hot" if emphasise and k in emphasise else ""}">{text}</li>')
    err = f"<small>{esc(cell['error'][:200])}</small>" if cell.get("error") else ""
    return (f'<td class="m-{m}"><div class="tag">{esc(MEANINGS[m][0])} {_check(cell)}</div>'
            f'<ul class="nums">{"".join(nums)}</ul>{err}</td>')


def _faults(rows: list[dict[str, Any]] | None) -> str:
    """The cluster topology's faults table and timelines (``queuekit faults`` / ``compare --topology cluster``)."""
    if not rows:
        return ""
    from . import faults

    return faults.html_section(rows)


def html_report(results: dict[str, Any], bench: dict[str, Any] | None = None) -> str:
    stacks = results["stacks"]
    head = "".join(f"<th>{esc(s)}</th>" for s in stacks)
    matrix = "".join(
        f"<tr><th>{esc(sc['name'])}<br><small>{esc(sc['concept'])}</small></th>"
        + "".join(_cell(cell_of(results, sc["name"], s)) for s in stacks) + "</tr>"
        for sc in results["scenarios"])
    families = compact.families(results)
    # another RabbitMQ version's column (celery@4.3) runs the same code as its stack's: shown once
    code = code_page.html_section([s for s in compact.ordered(results) if SEP not in s], families, results)
    figures = [("What happened on each stack (scenarios by meaning)", charts.outcome_chart(results))] \
        if results["cells"] else []
    if results["cells"] and (harm := charts.harm_chart(results)) is not None:
        figures.append(("Messages lost, duplicated, out of order or refused, where any stack had some", harm))
    figures += charts.bench_charts(bench) if bench else []
    figs = "".join(f'<figure class="chart"><figcaption>{esc(t)}</figcaption>{svg}</figure>' for t, svg in figures)
    legend = "".join(f'<span class="m-{m} swatch">{esc(label)}</span>' for m, (label, _, _) in MEANINGS.items()
                     if m != "error")
    env = {"environment": results.get("environment", {}),
           "options per cell": {f"{c['scenario']} / {c['stack']}": c.get("options") for c in results["cells"]}}
    if bench:
        env["bench"] = {k: bench.get(k) for k in ("config", "machine")}
    colours = "".join(f".m-{m} {{ background: {fill}; }} .m-{m} .tag {{ color: {ink}; }}\n"
                      for m, (_, fill, ink) in MEANINGS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>queuekit comparison {esc(results.get('started', ''))}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1.5rem; color: #1d2330; }}
h1 {{ margin-bottom: .2rem; }} h2 {{ margin-top: 2rem; border-bottom: 1px solid #e5e7eb; padding-bottom: .2rem; }}
.lede {{ color: #4b5563; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #d9dde3; padding: .45rem .6rem; vertical-align: top; text-align: left; font-size: .85rem; }}
th small, td small {{ color: #6b7280; font-weight: normal; }}
{colours}
.tag {{ font-weight: 600; font-size: .8rem; }}
.check {{ font-weight: normal; font-size: .72rem; margin-left: .3rem; }} .check.ok {{ color: #9ca3af; }}
.check.bad {{ color: #fff; background: #111827; border-radius: 3px; padding: 0 .3rem; }}
ul.nums {{ list-style: none; margin: .2rem 0 0; padding: 0; }} ul.nums li {{ color: #4b5563; }}
ul.nums li.hot {{ color: #111827; font-size: .95rem; }}
td.claim {{ background: #f9fafb; max-width: 22rem; }}
.swatch {{ display: inline-block; padding: .1rem .5rem; margin-right: .4rem; border: 1px solid #d9dde3;
  border-radius: 3px; font-size: .8rem; }}
figure.chart {{ margin: 1rem 0; }} figure.chart svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-weight: 600; }}
details pre {{ font-size: .75rem; overflow-x: auto; }}
{compact.CSS}
{code_page.CSS}
@media print {{
  html {{ font-size: 9px; }} body {{ margin: 0; padding: 0; max-width: none; font-size: 10px; }}
  * {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
  table {{ table-layout: fixed; }} td, th {{ padding: .25rem .35rem; overflow-wrap: anywhere; }}
  .check.bad {{ color: #111827; background: none; border: 1px solid #111827; }}
  tr, figure {{ break-inside: avoid; }} details > * {{ display: block; }} details summary {{ display: none; }}
  .check.bad::after {{ content: " (" attr(title) ")"; }}
}}
</style></head><body>
<h1>queuekit: where the stacks differ</h1>
<p class="lede">{len(results['scenarios'])} scenarios on {len(stacks)} stacks ({esc(', '.join(stacks))}), run on real
brokers ({esc(broker_versions(results) or 'none')}), {results.get('seconds', 0):.0f} s,
started {esc(results.get('started', ''))}. A cell's colour is what its numbers
mean; ✓ / ✗ says whether it matched what the scenario declared it expects (hover ✗ for why).</p>
<p>{legend}</p>
{compact.filters(results)}
<h2 id="differ">The matrix: where the stacks differ first</h2>
<p class="lede">A cell: what its numbers mean and the one number that differs (named under the scenario); ✗ = not what
the scenario expected. Hover a cell for every number, click it (or Enter) for the detail and the lines of code that
decide it. Columns are grouped by broker family.</p>
{compact.matrix(results)}
<h2 id="when">When to use which (from this run's observations)</h2>
<p class="lede">Best observed overall and within each broker family; every name links to its evidence cell, every
concept to the lines that decide it.</p>
{compact.guide(guide_rows(results), results)}
{versions.html_section(results)}
<h2 id="code-view">Code: the lines that decide delivery, on every stack</h2>
<p class="lede">Read from the <code># [semantics:&lt;concept&gt;]</code> marks in each app package (see docs/code-view.md):
the same workload's handler and topology, then each concept. The highlighted line is the mark; "explains" links the
matrix cells it decides.</p>
{code}
<h2>Charts</h2>{figs}
{_faults(results.get("faults"))}
<h2>Every cell</h2>
<table class="matrix" id="matrix"><tr><th>scenario</th>{head}</tr>{matrix}</table>
<h2>Versions and settings</h2>
<details><summary>brokers, libraries, machine, and the options of every cell</summary>
<pre>{esc(json.dumps(env, indent=2, default=str))}</pre></details>
<script>{compact.JS}</script>
</body></html>
"""
