"""The code view rendered: a section of report.html and ``queuekit code <workload>`` in the terminal.

Rows are sections (the workload's handler, its topology, then each concept),
columns the stacks. Every concept block links to the matrix cells it explains
on that stack (coloured by what they observed, when a run is at hand) and the
cells link back here (``#code-<stack>-<concept>``). Highlighting is pygments'
(inline CSS classes, no external file); the terminal uses rich's Syntax.
"""
from __future__ import annotations

import html
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from rich.columns import Columns
from rich.console import Console, Group
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

from queuekit.suite.concepts import CONCEPTS, SECTIONS
from workloads import WORKLOADS

from .code_view import Block, view
from .meaning import cell_of, meaning

esc = html.escape
_FORMAT = HtmlFormatter(nowrap=True, style="friendly")
TITLES = {"handler": "handler: what a message runs through", "topology": "topology: what the stack declares",
          **{c: k.title for c, k in CONCEPTS.items()}}
SIDE_BY_SIDE_MIN = 60  # terminal columns per stack before the view is put side by side


def _code_html(b: Block) -> str:
    lines = highlight(b.code, PythonLexer(stripnl=False), _FORMAT).rstrip("\n").split("\n")
    out = []
    for n, line in enumerate(lines, b.start):
        out.append(f'<span class="ln{" mk" if n == b.marked else ""}">{n:>4}</span>  {line}')
    if b.cut:
        out.append(f'<span class="ln">    </span>  <span class="c1"># … {b.cut} more lines in {esc(b.path)}</span>')
    return "\n".join(out)


def _explains(results: dict[str, Any] | None, section: str, stack: str) -> str:
    if section not in CONCEPTS:
        return ""
    links = []
    for sc in CONCEPTS[section].scenarios:
        cell = cell_of(results, sc, stack) if results else None
        if results and cell is None:
            continue
        m = meaning(cell)[0] if cell and not cell.get("skipped") else "designed"
        links.append(f'<a class="m-{m}" href="#cell-{esc(sc)}-{esc(stack)}">{esc(sc)}</a>')
    return f'<div class="explains">explains: {" ".join(links)}</div>' if links else ""


def _td(stack: str, family: str, blocks: list[Block], section: str, results: dict[str, Any] | None) -> str:
    anchor = f' id="code-{esc(stack)}-{esc(section)}"' if section in CONCEPTS else ""
    body = "".join(f'<div class="where">{esc(b.path)}:{b.start}</div><pre class="hl">{_code_html(b)}</pre>'
                   for b in blocks) or '<p class="none">no marked line</p>'
    return (f'<td{anchor} data-stack="{esc(stack)}" data-family="{esc(family)}">{body}'
            f"{_explains(results, section, stack)}</td>")


def html_section(stacks: list[str], families: dict[str, str], results: dict[str, Any] | None = None) -> str:
    """The "Code" section: every stack's marked lines, one workload's handler and topology at a time."""
    views = {w: view(w, stacks) for w in WORKLOADS}
    head = "".join(f'<th data-stack="{esc(s)}" data-family="{esc(families.get(s, ""))}">{esc(s)}</th>' for s in stacks)
    rows = []
    for w, by_stack in views.items():
        for section in SECTIONS:
            rows.append(f'<tr data-workload="{esc(w)}"><th scope="row">{esc(w)}: {esc(TITLES[section])}</th>'
                        + "".join(_td(s, families.get(s, ""), [b for b in by_stack[s] if b.section == section],
                                      section, results) for s in stacks) + "</tr>")
    first = next(iter(views.values()))
    for concept in CONCEPTS:
        rows.append(f'<tr id="code-row-{esc(concept)}"><th scope="row">{esc(TITLES[concept])}</th>'
                    + "".join(_td(s, families.get(s, ""), [b for b in first[s] if b.section == concept], concept,
                                  results) for s in stacks) + "</tr>")
    tabs = "".join(f'<button type="button" data-workload="{esc(w)}" aria-pressed="false">{esc(w)}</button>'
                   for w in WORKLOADS)
    return (f'<p class="tabs">workload: {tabs}</p><div class="code-scroll"><table class="code" id="code">'
            f"<thead><tr><th>section</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


CSS = _FORMAT.get_style_defs(".hl") + """
.code-scroll { overflow-x: auto; border: 1px solid #d9dde3; width: calc(100vw - 3rem);  /* the window's width */
  margin-left: calc(50% - 50vw + 1.5rem); box-sizing: border-box; }
table.code { width: max-content; }
table.code td, table.code th { vertical-align: top; font-size: .75rem; }
table.code td { width: 22rem; min-width: 22rem; max-width: 22rem; }
table.code tbody th { width: 7rem; position: sticky; left: 0; background: #fff; z-index: 1; }
pre.hl { margin: 0 0 .4rem; font: .68rem/1.3 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap;
  background: #fafafa; padding: .3rem; }
pre.hl .ln { color: #9ca3af; user-select: none; } pre.hl .mk { color: #fff; background: #2563eb; }
.where { color: #6b7280; font-size: .7rem; } .explains a { padding: 0 .25rem; margin-right: .2rem; border: 1px solid #d9dde3; }
.tabs button { font: inherit; padding: .1rem .6rem; } .tabs button[aria-pressed=true] { background: #1d2330; color: #fff; }
td:target, tr:target th { outline: 3px solid #2563eb; outline-offset: -3px; }
@media print {  /* on paper one stack under another, labelled (the filters choose which stacks print) */
  .code-scroll { overflow: visible; border: 0; width: auto; margin: 0; } .tabs, table.code thead { display: none; }
  table.code, table.code tbody, table.code tr, table.code td, table.code tbody th { display: block; width: auto;
    max-width: none; min-width: 0; position: static; border: 0; }
  table.code tbody th { font-size: .9rem; border-top: 1px solid #9ca3af; margin-top: .6rem; }
  table.code td::before { content: attr(data-stack); font-weight: 600; }
  table.code tr, table.code td { break-inside: auto; } pre.hl { break-inside: avoid; } }
"""


def terminal(workload: str, console: Console, stacks: list[str] | None = None) -> None:
    """The side-by-side view in a terminal: columns when there is room, else one stack under another."""
    by_stack = view(workload, stacks)
    side = console.width >= SIDE_BY_SIDE_MIN * min(len(by_stack), 3) and console.is_terminal
    console.print(Text.assemble((f"queuekit code {workload}", "bold"), f": the lines that decide delivery, on "
                                f"{len(by_stack)} stacks (marks: [semantics:<concept>] comments in each app package; "
                                "docs/code-view.md)"))
    for section in (*SECTIONS, *CONCEPTS):
        console.print(Rule(TITLES[section]))
        if section in CONCEPTS:
            console.print(Text("explains: " + ", ".join(CONCEPTS[section].scenarios), style="dim"))
        panels = []
        for stack, blocks in by_stack.items():
            own = [b for b in blocks if b.section == section]
            body = Group(*(Group(Text(f"{b.path}:{b.start}", style="dim"),
                                 Syntax(b.code, "python", line_numbers=True, start_line=b.start,
                                        highlight_lines={b.marked}, word_wrap=True, theme="ansi_light"),
                                 *([Text(f"({b.cut} more lines in {b.path})", style="dim")] if b.cut else []))
                           for b in own)) if own else Text("no marked line", style="dim")
            panels.append(Panel(body, title=stack, title_align="left",
                                width=(console.width // min(len(by_stack), 3)) - 1 if side else None))
        console.print(Columns(panels) if side else Group(*panels))
