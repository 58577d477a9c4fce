"""The report's charts as inline SVG (matplotlib): what happened per stack, the harm per scenario, the bench."""
from __future__ import annotations

import io
from typing import Any

from .meaning import MEANINGS, cell_of, tally

HARM = ("lost", "duplicates", "duplicate_effects", "order_violations", "publisher_refused")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def outcome_chart(results: dict[str, Any]) -> str:
    """Cells per stack by meaning: a stacked horizontal bar per stack."""
    plt = _plt()
    counts = tally(results)
    stacks = list(counts)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(stacks) + 0.9))
    left = [0] * len(stacks)
    for m, (label, fill, ink) in MEANINGS.items():
        widths = [counts[s][m] for s in stacks]
        if any(widths):
            ax.barh(stacks, widths, left=left, color=fill if m != "designed" else "#e5e7eb", edgecolor=ink,
                    linewidth=0.6, label=label)
            left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("scenarios")
    ax.legend(ncol=4, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    out = _svg(fig)
    plt.close(fig)
    return out


def harm_chart(results: dict[str, Any]) -> str | None:
    """Messages lost / duplicated / out of order / refused, per scenario where any stack had some."""
    plt = _plt()
    rows = []
    for sc in results["scenarios"]:
        values = {}
        for stack in results["stacks"]:
            cell = cell_of(results, sc["name"], stack) or {}
            obs = cell.get("observed") or {}
            values[stack] = sum(v for k, v in obs.items() if (k in HARM or k.endswith(("_missing", "_duplicates")))
                                and isinstance(v, int) and not isinstance(v, bool))
        if any(values.values()):
            rows.append((sc["name"], values))
    if not rows:
        return None
    stacks = results["stacks"]
    width = 0.8 / len(stacks)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for i, stack in enumerate(stacks):
        ax.bar([x + i * width for x in range(len(rows))], [v[stack] for _, v in rows], width, label=stack)
    ax.set_xticks([x + width * (len(stacks) - 1) / 2 for x in range(len(rows))])
    ax.set_xticklabels([n for n, _ in rows], rotation=20, ha="right")
    ax.set_ylabel("messages")
    ax.legend(frameon=False)
    out = _svg(fig)
    plt.close(fig)
    return out


def bench_charts(bench: dict[str, Any]) -> list[tuple[str, str]]:
    """Throughput (median, min-max) and latency percentiles per stack and mode, from a `queuekit bench` JSON."""
    plt = _plt()
    stacks = bench.get("stacks") or {}
    modes = list(dict.fromkeys(m for per in stacks.values() for m in per))
    if not stacks or not modes:
        return []
    out = []
    width = 0.8 / len(stacks)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for i, (stack, per) in enumerate(stacks.items()):
        med = [((per.get(m) or {}).get("rate") or {}).get("median", 0) for m in modes]
        lo = [med[j] - ((per.get(m) or {}).get("rate") or {}).get("min", med[j]) for j, m in enumerate(modes)]
        hi = [((per.get(m) or {}).get("rate") or {}).get("max", med[j]) - med[j] for j, m in enumerate(modes)]
        ax.bar([x + i * width for x in range(len(modes))], med, width, yerr=[lo, hi], capsize=2, label=stack)
    ax.set_xticks([x + width * (len(stacks) - 1) / 2 for x in range(len(modes))])
    ax.set_xticklabels(modes)
    ax.set_ylabel("msgs/s (median, min-max)")
    ax.legend(frameon=False)
    out.append(("Throughput per stack and handler mode (queuekit bench)", _svg(fig)))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    labels, x = [], 0
    for stack, per in stacks.items():
        for m in modes:
            lat = (per.get(m) or {}).get("latency") or {}
            if lat:
                ax.plot([x, x, x], [lat.get("p50_ms"), lat.get("p95_ms"), lat.get("p99_ms")], "-", color="#9ca3af")
                ax.scatter([x], [lat.get("p50_ms")], color="#2563eb", zorder=3, label="p50" if x == 0 else None)
                ax.scatter([x], [lat.get("p99_ms")], color="#b42318", marker="^", zorder=3,
                           label="p99" if x == 0 else None)
                labels.append(f"{stack}\n{m}")
                x += 1
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("publish to effect, ms")
    ax.legend(frameon=False)
    out.append(("Latency at a paced load: p50 to p99 (queuekit bench)", _svg(fig)))
    plt.close(fig)
    return out
