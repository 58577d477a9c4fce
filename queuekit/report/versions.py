"""What changes from one RabbitMQ version to another, cell by cell, each difference with what explains it.

Two ways to get the pair: one run of ``queuekit compare --rabbitmq 3.10,4``, whose results.json holds the
RabbitMQ columns twice (``celery`` and ``celery@4.3``: ``within`` splits it), or two runs of one version
each, ``queuekit report NEW --versus OLD``. Either way the cells that differ are put side by side (what
they mean, whether they met their expectation, their key numbers), under the broker versions each run
recorded, with the known change that explains each (``known_changes.py``) or "unexplained".
"""
from __future__ import annotations

import html
from typing import Any

from queuekit.suite.versions import split_column

from .known_changes import explain
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
                         "changed": changed, "expectation_changed": old.get("expected") != cell.get("expected"),
                         "options": cell.get("options") or {}})
    return rows


def _md(look: dict[str, Any], changed: list[str]) -> str:
    nums = ", ".join(f"**{k}={short(v)}**" if k in changed else f"{k}={short(v)}" for k, v in look["numbers"].items())
    return f"{look['meaning']} {'✓' if look['ok'] else '✗'} {nums}".strip()


def rabbitmq_version(results: dict[str, Any], fallback: str = "?") -> str:
    """The RabbitMQ version a run (or one side of ``within``) recorded: "3.10.8"."""
    return (results.get("environment", {}).get("brokers", {}).get("rabbitmq") or {}).get("version") or fallback


def explained(rows: list[dict[str, Any]], before: str, after: str) -> list[dict[str, Any]]:
    """Each row with ``explained_by``: the known changes between the two versions that fit it (maybe none)."""
    return [{**r, "explained_by": explain(r, before, after)} for r in rows]


def within(results: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(before, after) per further version of one ``compare --rabbitmq A,B`` run: ``before`` the run's own
    RabbitMQ columns, ``after`` the ``<stack>@B`` columns under their stacks' names, each with its node's
    version recorded as the ``rabbitmq`` broker. Empty for a run of one version."""
    found = results.get("environment", {}).get("brokers", {})
    pairs = []
    for version in dict.fromkeys(v for s in results["stacks"] if (v := split_column(s)[1])):
        again = {s: split_column(s)[0] for s in results["stacks"] if split_column(s)[1] == version}
        before = {"stacks": list(again.values()), "environment": {"brokers": {"rabbitmq": found.get("rabbitmq", {})}},
                  "cells": [c for c in results["cells"] if c["stack"] in again.values()]}
        after = {"stacks": list(again.values()),
                 "environment": {"brokers": {"rabbitmq": found.get(f"rabbitmq@{version}", {"version": version})}},
                 "cells": [{**c, "stack": again[c["stack"]]} for c in results["cells"] if c["stack"] in again]}
        pairs.append((before, after))
    return pairs


def _compared(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], str]:
    """(older version, newer version, the differing cells explained, the sentence that counts them). Cells
    whose meaning or check changed come first; those that differ in their numbers only (same meaning, same
    check: a count that varies from run to run, such as order violations, looks like this) are marked."""
    was, now = rabbitmq_version(before), rabbitmq_version(after)
    rows = explained(version_changes(before, after), was, now)
    for r in rows:
        r["numbers_only"] = (r["before"]["meaning"], r["before"]["ok"]) == (r["after"]["meaning"], r["after"]["ok"])
    rows.sort(key=lambda r: r["numbers_only"])
    same = sum(1 for c in after["cells"] if cell_of(before, c["scenario"], c["stack"])) - len(rows)
    only = sum(r["numbers_only"] for r in rows)
    said = (f"{len(rows)} cells differ, {same} are the same; {len(rows) - only} differ in meaning or in meeting their "
            f"expectation, {only} only in their numbers (same meaning, same check). A difference no known change "
            "explains says \"unexplained\": a lead to run again, not a finding.")
    return was, now, rows, said


def _unexplained(row: dict[str, Any]) -> str:
    return "unexplained (numbers only)" if row["numbers_only"] else "unexplained"


def version_section(before: dict[str, Any], after: dict[str, Any], level: str = "##") -> str:
    """Markdown: a header naming both runs' broker versions, then one row per cell that differs, with the
    known change that explains it or "unexplained"."""
    _, _, rows, said = _compared(before, after)
    lines = [f"{level} What changes from {broker_versions(before) or '?'} to {broker_versions(after) or '?'}", "",
             said + " Numbers that changed are in bold.", ""]
    if rows:
        lines += ["| scenario | stack | before | after | explained by |", "|---|---|---|---|---|"]
        lines += [f"| {r['scenario']} | {r['stack']} | {_md(r['before'], r['changed'])} | {_md(r['after'], r['changed'])} "
                  f"| {_why(r['explained_by']) or _unexplained(r)} |" for r in rows]
    return "\n".join(lines) + "\n"


def _why(changes: list) -> str:
    return "<br>".join(f"{k.since}: {k.what} ([source]({k.source}))" for k in changes)


def section(results: dict[str, Any]) -> str:
    """report.md's "what changes" sections of one ``compare --rabbitmq A,B`` run ("" for one version)."""
    return "\n".join(version_section(before, after) for before, after in within(results))


def _html(look: dict[str, Any], changed: list[str]) -> str:
    """One side of a row in HTML: meaning, check, key numbers, the changed ones in bold."""
    nums = ", ".join(f"<b>{html.escape(f'{k}={short(v)}')}</b>" if k in changed else html.escape(f"{k}={short(v)}")
                     for k, v in look["numbers"].items())
    return f"{html.escape(look['meaning'])} {'✓' if look['ok'] else '✗'} {nums}".strip()


def html_section(results: dict[str, Any]) -> str:
    """The same for report.html: per further version, a table of the differing cells and what explains them."""
    esc = html.escape
    parts = []
    for before, after in within(results):
        was, now, rows, said = _compared(before, after)
        body = "".join(
            f"<tr><th>{esc(r['scenario'])}</th><td>{esc(r['stack'])}</td><td>{_html(r['before'], r['changed'])}</td>"
            f"<td>{_html(r['after'], r['changed'])}</td><td>"
            + ("<br>".join(f'{esc(k.since)}: {esc(k.what)} (<a href="{esc(k.source)}">source</a>)'
                           for k in r["explained_by"]) or esc(_unexplained(r))) + "</td></tr>" for r in rows)
        parts.append(f'<h2 id="versions-{esc(now)}">What changes from RabbitMQ {esc(was)} to {esc(now)}</h2>'
                     f'<p class="lede">{esc(said)}</p>'
                     + (f"<table><tr><th>scenario</th><th>stack</th><th>{esc(was)}</th><th>{esc(now)}</th>"
                        f"<th>explained by</th></tr>{body}</table>" if rows else ""))
    return "".join(parts)
