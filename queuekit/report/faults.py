"""The faults section: one row per broker x variant x fault, and a timeline per row (the gap is visible)."""
from __future__ import annotations

import html
import io
import json
import time
from pathlib import Path

from queuekit.suite.faults import FaultOutcome

COLUMNS = ("lost", "vanished", "stranded", "duplicates", "unexpected", "order_violations", "publish_gap_s", "consume_gap_s")


def verdict(row: dict) -> str:
    if row.get("error"):
        return "error"
    if row.get("unsupported"):
        return "not run"
    if not row.get("promise"):
        return "measured"
    return "kept" if all(row.get(k) == v for k, v in row["promise"].items()) else "BROKEN"


def rows_of(outcomes: list[tuple[dict, FaultOutcome | None, str | None]]) -> list[dict]:
    """(case info, outcome or None, error or None) -> flat rows for the table and results.json."""
    rows = []
    for info, out, error in outcomes:
        row = {**info, **(out.as_dict() if out else {}), "error": error}
        row["verdict"] = verdict(row)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    head = ["broker", "variant", "fault", "leader", "confirmed", *COLUMNS, "promise", "verdict"]
    lines = ["## Faults", "",
             "A keyed stream (raw-client probes: 100 records/s; `stack=` rows: 50/s through the stack's own publish, "
             "workers and ledger) through a fault of the queue's / partition's leader on the "
             "3-node clusters; counts after a final drain and a final read. Gaps are the longest stretch "
             "without a confirmed publish / a consumed record, from the fault to the end of recovery. `vanished`: "
             "confirmed, yet gone from the broker after the heal even if consumed before (only where the final "
             "read returns consumed records: Redis streams; `-` elsewhere).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        promise = ", ".join(f"{k}={v}" for k, v in r.get("promise", {}).items()) or "none (may lose)"
        reason = r.get("error") or r.get("unsupported") or ""
        cells = [r["broker"], r["variant"], r["fault"], f"node {r.get('leader', '-')}", str(r.get("confirmed", "-")),
                 *(str("-" if r.get(c) is None else r[c]) for c in COLUMNS), promise,
                 f"**{r['verdict']}**" + (f" ({reason[:80]})" if reason else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def timeline_figure(rows: list[dict]):
    """Confirmed and consumed records per second through each fault, one small chart per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [r for r in rows if r.get("timeline")]
    if not drawn:
        return None
    cols = 2
    nrows = (len(drawn) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(11, 2.4 * nrows), squeeze=False, sharey=False)
    for ax, r in zip(axes.flat, drawn):
        tl = r["timeline"]
        ax.axvspan(tl["fault_from"], tl["fault_to"], color="#f4c7c3", label="fault")
        ax.plot(tl["t"], tl["confirmed_per_s"], label="confirmed/s", lw=1)
        ax.plot(tl["t"], tl["consumed_per_s"], label="consumed/s", lw=1)
        ax.set_title(f"{r['broker']} {r['variant']} — {r['fault']} (lost {r['lost']})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(drawn):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("seconds from the fault", fontsize=8)
    fig.tight_layout()
    return fig


def timeline_svg(rows: list[dict]) -> str:
    import matplotlib.pyplot as plt

    fig = timeline_figure(rows)
    if fig is None:
        return ""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def html_section(rows: list[dict]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in ("broker", "variant", "fault", "leader", "confirmed", *COLUMNS,
                                                   "verdict"))
    body = []
    for r in rows:
        cls = {"kept": "ok", "BROKEN": "bad", "error": "bad"}.get(r["verdict"], "")
        tds = [r["broker"], r["variant"], r["fault"], f"node {r.get('leader', '-')}", r.get("confirmed", "-"),
               *("-" if r.get(c) is None else r[c] for c in COLUMNS),
               r["verdict"] + (f": {r['unsupported']}" if r.get("unsupported") else "")]
        body.append(f'<tr class="{cls}">' + "".join(f"<td>{esc(str(v))}</td>" for v in tds) + "</tr>")
    return (f'<h2 id="faults">Faults</h2><table class="matrix"><tr>{head}</tr>{"".join(body)}</table>'
            f'<figure class="chart"><figcaption>Publish and consume rates through each fault</figcaption>'
            f"{timeline_svg(rows)}</figure>")


def write(rows: list[dict], outdir: Path) -> dict[str, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": outdir / "faults.json", "md": outdir / "faults.md", "html": outdir / "faults.html",
             "report": outdir / "report.html"}
    paths["json"].write_text(json.dumps(rows, indent=2, default=str))
    if (fig := timeline_figure(rows)) is not None:  # a PNG too, for READMEs and issue notes
        import matplotlib.pyplot as plt

        paths["png"] = outdir / "faults-timeline.png"
        fig.savefig(paths["png"], dpi=90, bbox_inches="tight")
        plt.close(fig)
    paths["md"].write_text(markdown(rows))
    paths["html"].write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>queuekit faults</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem} .matrix td,.matrix th{border:1px solid #ccc;"
        "padding:.3rem .5rem;font-size:.85rem} table{border-collapse:collapse} tr.ok{background:#eef8ee}"
        "tr.bad{background:#fbeaea} svg{max-width:100%;height:auto}</style></head><body>"
        f"<h1>queuekit faults</h1>{html_section(rows)}</body></html>\n")
    paths["report"].write_text(report_html(rows))
    return paths


def report_html(rows: list[dict]) -> str:
    """The main report's page (report.html) with the faults as its section: what ``compare --topology cluster``
    shows. A single-topology results.json that carries ``"faults"`` rows gets the same section."""
    from .html import html_report

    stacks = list(dict.fromkeys(r["stack"] for r in rows if r.get("stack")))
    return html_report({"stacks": stacks, "scenarios": [], "cells": [], "faults": rows,
                        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "seconds": sum(r.get("seconds") or 0 for r in rows)})
