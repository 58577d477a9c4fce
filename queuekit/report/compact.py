"""The compact matrix (scenario × stack, a dozen columns on one screen) and "when to use which", as HTML.

A cell is its meaning's colour and one short word, plus the one number that
differs between the stacks (its name is in the row header); everything else
is on hover (``title``) and on click (a panel below the table). Columns are
grouped by broker family (``results["families"]``); rows where the stacks
differ come first. The filters and the panel are a few lines of plain JS in
the same file; without JS every cell still shows its word and number, and a
printout shows the table as it is.
"""
from __future__ import annotations

import html
from typing import Any

from queuekit.suite.concepts import CONCEPTS, concepts_of

from .meaning import MEANINGS, cell_of, differences, key_numbers, meaning, short

esc = html.escape
WORD = {"lost": "lost", "order": "order", "refused": "refused", "designed": "ok", "error": "error"}


def families(results: dict[str, Any]) -> dict[str, str]:
    """stack -> broker family; results.json without ``families`` (older runs) asks the registry."""
    known = results.get("families") or {}
    out = {}
    for stack in results["stacks"]:
        if stack not in known:
            from queuekit.stacks.registry import load_stack

            try:
                known = {**known, stack: load_stack(stack).capabilities.broker}
            except (ImportError, ValueError):
                known = {**known, stack: "other"}
        out[stack] = known[stack]
    return out


def ordered(results: dict[str, Any]) -> list[str]:
    """The stacks, grouped by family (families in order of first appearance, stacks in run order)."""
    fam = families(results)
    order = list(dict.fromkeys(fam.values()))
    return sorted(results["stacks"], key=lambda s: order.index(fam[s]))


def shown_numbers(results: dict[str, Any]) -> dict[str, str | None]:
    """Per scenario, the one number its row shows: among those that differ between the stacks, the first that
    decided a cell's colour (lost, order_violations, publisher_refused, ...), else the first that differs; for a
    row the same everywhere, the first number the scenario measures. The terminal matrix shows the same."""
    differ = {d["scenario"]: d for d in differences(results)}
    out: dict[str, str | None] = {}
    for sc in results["scenarios"]:
        cells = [c for c in results["cells"] if c["scenario"] == sc["name"] and not c.get("skipped")]
        d = differ.get(sc["name"])
        if d and d["keys"]:
            decided = {why.split("=")[0] for c in cells for why in meaning(c)[1]}
            out[sc["name"]] = next((k for k in d["keys"] if k in decided), d["keys"][0])
        else:
            out[sc["name"]] = next((k for c in cells for k in key_numbers(c)), None)
    return out


def cell_id(scenario: str, stack: str) -> str:
    return f"cell-{scenario}-{stack}"


def _cell(results: dict[str, Any], scenario: str, stack: str, key: str | None, family: str) -> str:
    cell = cell_of(results, scenario, stack)
    attrs = f'id="{esc(cell_id(scenario, stack))}" data-stack="{esc(stack)}" data-family="{esc(family)}"'
    if cell is None or cell.get("skipped"):
        why = f"skipped: {cell['skipped']}" if cell else "not run"
        return f'<td {attrs} class="m-designed none" title="{esc(why)}">–</td>'
    m, decided = meaning(cell)
    numbers = key_numbers(cell)
    value = short(numbers[key]) if key in numbers else ""
    check = "" if not cell.get("mismatches") and not cell.get("error") else "✗"
    hover = "; ".join([f"{k}={short(v)}" for k, v in numbers.items()] + cell.get("mismatches", [])
                      + ([cell["error"][:200]] if cell.get("error") else []))
    code = "".join(f'<a href="#code-{esc(stack)}-{c}">{esc(c)}</a> ' for c in concepts_of(scenario))
    detail = (f"<b>{esc(scenario)} on {esc(stack)}</b>: {esc(MEANINGS[m][0])}"
              f"{' — ' + esc(', '.join(decided)) if decided else ''}<br>"
              + "<br>".join(f"{esc(k)} = <b>{esc(short(v))}</b>" for k, v in numbers.items())
              + (f"<br>✗ differs from expectation: {esc('; '.join(cell['mismatches']))}" if cell.get("mismatches")
                 else "<br>✓ matched the scenario's expectation")
              + (f"<br>{esc(cell['error'][:300])}" if cell.get("error") else "")
              + (f"<br>the lines that decide it: {code}" if code else ""))
    return (f'<td {attrs} class="m-{m}"><button type="button" title="{esc(hover)}">'
            f'<span class="w">{WORD[m]}{check}</span><span class="n">{esc(value)}</span></button>'
            f'<template>{detail}</template></td>')


def matrix(results: dict[str, Any]) -> str:
    """The compact matrix: differing rows first, then the rows that were the same everywhere."""
    stacks, fam = ordered(results), families(results)
    groups = list(dict.fromkeys(fam[s] for s in stacks))
    head1 = "".join(f'<th class="fam" data-family="{esc(g)}" colspan="{sum(fam[s] == g for s in stacks)}">{esc(g)}</th>'
                    for g in groups)
    head2 = "".join(f'<th class="stack" data-stack="{esc(s)}" data-family="{esc(fam[s])}"><span>{esc(s)}</span></th>'
                    for s in stacks)
    differ = differences(results)
    shown = shown_numbers(results)

    def row(sc: dict[str, Any]) -> str:
        name, key = sc["name"], shown[sc["name"]]
        return (f'<tr><th scope="row" title="{esc(sc.get("question") or sc.get("concept", ""))}">{esc(name)}'
                f'<small>{esc(key or "")}</small></th>'
                + "".join(_cell(results, name, s, key, fam[s]) for s in stacks) + "</tr>")

    by_name = {sc["name"]: sc for sc in results["scenarios"]}
    first = [by_name[d["scenario"]] for d in differ if d["scenario"] in by_name]
    rest = [sc for sc in results["scenarios"] if sc["name"] not in {d["scenario"] for d in differ}]
    span = len(stacks) + 1
    return ('<table class="compact" id="compact"><thead><tr>'
            f'<th class="scen" rowspan="2">scenario<small>number shown</small></th>{head1}</tr>'
            f"<tr>{head2}</tr></thead>"
            f'<tbody id="differences"><tr class="sep"><td colspan="{span}">where the stacks differ</td></tr>'
            + "".join(map(row, first)) + "</tbody>"
            f'<tbody id="alike"><tr class="sep"><td colspan="{span}">the same on every stack</td></tr>'
            + "".join(map(row, rest)) + '</tbody></table><div id="cell-detail" aria-live="polite"></div>')


def filters(results: dict[str, Any]) -> str:
    fam = families(results)
    boxes = "".join(f'<label><input type="checkbox" checked data-filter-family="{esc(g)}"> {esc(g)}</label>'
                    for g in dict.fromkeys(fam[s] for s in ordered(results)))
    stacks = "".join(f'<label><input type="checkbox" checked data-filter-stack="{esc(s)}"> {esc(s)}</label>'
                     for s in ordered(results))
    return (f'<fieldset class="filters"><legend>show</legend><span>families: {boxes}</span>'
            f"<span>stacks: {stacks}</span></fieldset>")


def per_family(row: dict[str, Any], fam: dict[str, str]) -> dict[str, list[str] | None]:
    """The best of each family, where the run tells them apart: None for a family whose stacks all did
    equally well; nothing at all when no stack did better than another."""
    if row["verdict"] == "no difference observed":
        return {}
    out: dict[str, list[str] | None] = {}
    for family, best in row.get("by_family", {}).items():
        measured = [s for s, v in row["values"].items() if fam.get(s) == family and v is not None]
        out[family] = None if best and len(best) == len(measured) > 1 else best
    return out


def guide(rows: list[dict[str, Any]], results: dict[str, Any]) -> str:
    """Each need: the best observed overall and per family, each name a link to its evidence cell, and
    the annotated lines that decide it (the code view)."""
    items = []
    for r in rows:
        def link(stack: str, r: dict[str, Any] = r) -> str:
            return (f'<a href="#{esc(cell_id(r["scenario"], stack))}">{esc(stack)} '
                    f'{esc(short(r["values"].get(stack)))}</a>')

        fams = "; ".join(f"{esc(f)}: " + ("all alike" if best is None else ", ".join(map(link, best)) or "none")
                         for f, best in per_family(r, families(results)).items())
        evidence = ", ".join(link(s) for s, v in r["values"].items() if v is not None)
        lines = " ".join(f'<a href="#code-row-{c}">{esc(c)}</a>' for c in concepts_of(r["scenario"]) if c in CONCEPTS)
        items.append(f"<li><b>{esc(r['need'])}</b> — {esc(r['verdict'])}."
                     + (f"<br>best per family: {fams}" if fams else "")
                     + f"<br><small>evidence: <code>{esc(r['scenario'])}</code> {esc(r['metric'])}: {evidence}"
                     + (f"; the lines that decide it: {lines}" if lines else "") + "</small></li>")
    return f'<ul id="guide">{"".join(items)}</ul>'


CSS = """
.filters { border: 1px solid #d9dde3; font-size: .8rem; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
.filters label { white-space: nowrap; margin-right: .4rem; }
table.compact { width: auto; table-layout: auto; }
table.compact th, table.compact td { padding: 0; font-size: .75rem; text-align: center; vertical-align: middle; }
table.compact th[scope=row], table.compact th.scen { text-align: left; padding: .15rem .4rem;
  width: 11rem; min-width: 9.5rem; max-width: 12rem; overflow-wrap: anywhere; font-weight: 600; }
table.compact th small { display: block; font-weight: normal; color: #6b7280; }
table.compact th.fam { background: #f3f4f6; padding: .15rem; }
table.compact th.stack { height: 7.5rem; width: 3rem; vertical-align: bottom; padding: .2rem 0; }
table.compact th.stack span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
table.compact td button { all: unset; box-sizing: border-box; display: block; width: 3rem; min-height: 2.3rem;
  padding: .15rem .1rem; cursor: pointer; line-height: 1.15; }
table.compact td button:focus-visible, table.compact td:target { outline: 3px solid #2563eb; outline-offset: -3px; }
table.compact .w { display: block; font-weight: 600; font-size: .68rem; }
table.compact .n { display: block; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
table.compact tr.sep td { text-align: left; background: #fafafa; color: #4b5563; font-style: italic; padding: .2rem .4rem; }
#cell-detail { font-size: .85rem; margin: .5rem 0; min-height: 1rem; }
#cell-detail:not(:empty) { border-left: 4px solid #2563eb; padding: .3rem .6rem; background: #f9fafb; }
.off { display: none !important; }
@media print { .filters, #cell-detail { display: none; } table.compact th.stack { height: 6rem; } }
"""

JS = """
(function () {
  function apply() {
    var offF = {}, offS = {};
    document.querySelectorAll('[data-filter-family]').forEach(function (b) { offF[b.dataset.filterFamily] = !b.checked; });
    document.querySelectorAll('[data-filter-stack]').forEach(function (b) { offS[b.dataset.filterStack] = !b.checked; });
    document.querySelectorAll('[data-stack]').forEach(function (el) {
      el.classList.toggle('off', !!(offS[el.dataset.stack] || offF[el.dataset.family]));
    });
    document.querySelectorAll('th.fam').forEach(function (th) {
      var n = document.querySelectorAll('th.stack[data-family="' + th.dataset.family + '"]:not(.off)').length;
      th.colSpan = Math.max(n, 1); th.classList.toggle('off', n === 0);
    });
  }
  document.querySelectorAll('[data-filter-family],[data-filter-stack]').forEach(function (b) {
    b.addEventListener('change', apply);
  });
  var panel = document.getElementById('cell-detail');
  function show(td) {
    var t = td && td.querySelector('template');
    if (t && panel) { panel.innerHTML = t.innerHTML; }
  }
  document.querySelectorAll('table.compact td button').forEach(function (b) {
    b.addEventListener('click', function () { show(b.parentElement); });
  });
  function fromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.id.indexOf('cell-') === 0) { show(el); }
    if (el && el.tagName === 'TD' && el.closest('table.code')) { showWorkloadOf(el); }
  }
  function showWorkload(w) {
    document.querySelectorAll('[data-workload]').forEach(function (el) {
      el.classList.toggle('off', el.dataset.workload !== w && !el.matches('button'));
    });
    document.querySelectorAll('button[data-workload]').forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.dataset.workload === w));
    });
  }
  function showWorkloadOf(el) { var tr = el.closest('tr[data-workload]'); if (tr) { showWorkload(tr.dataset.workload); } }
  document.querySelectorAll('button[data-workload]').forEach(function (b) {
    b.addEventListener('click', function () { showWorkload(b.dataset.workload); });
  });
  var first = document.querySelector('button[data-workload]');
  if (first) { showWorkload(first.dataset.workload); }
  window.addEventListener('hashchange', fromHash);
  apply(); fromHash();
})();
"""
