"""The bench's terminal table and chart (PNG + SVG) from its JSON result."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table


def table(result: dict[str, Any]) -> Table:
    t = Table(title=f"queuekit bench — {result['machine']['cores']} cores, {result['machine']['cpu']}")
    for col in ("stack / baseline", "mode", "msgs/s (median)", "min-max", "publish msgs/s", "p50 ms", "p95 ms",
                "p99 ms", "x baseline"):
        t.add_column(col, justify="right" if col not in ("stack / baseline", "mode") else "left")
    for name, base in result["baselines"].items():
        r = base["rate"]
        t.add_row(f"raw {name}", "consume+ack", f"{r['median']:.0f}", f"{r['min']:.0f}-{r['max']:.0f}",
                  f"{base['publish_rate']['median']:.0f}", "", "", "", "1.00")
    for stack, modes in result["stacks"].items():
        for mode, m in modes.items():
            r, lat = m["rate"], m["latency"]
            ratio = m.get("ratio_to_baseline")
            t.add_row(stack, mode, f"{r['median']:.0f}", f"{r['min']:.0f}-{r['max']:.0f}",
                      f"{m['publish_rate']['median']:.0f}", f"{lat['p50_ms']:.1f}", f"{lat['p95_ms']:.1f}",
                      f"{lat['p99_ms']:.1f}", f"{ratio:.2f}" if ratio is not None else "")
    h = result["harness"]
    t.caption = (f"harness: process() {h['us_per_msg_ledger_on']:.0f} µs/msg with the ledger, "
                 f"{h['us_per_msg_ledger_off']:.0f} µs without; ledger share of each stack's noop time: "
                 + ", ".join(f"{s} {m['noop']['ledger_share']:.0%}" for s, m in result["stacks"].items()
                             if m.get("noop", {}).get("ledger_share") is not None))
    return t


def chart(result: dict[str, Any], stem: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(result["stacks"])
    modes = list(next(iter(result["stacks"].values())))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        xs = [x + i * width for x in range(len(stacks))]
        ax1.bar(xs, [result["stacks"][s][mode]["rate"]["median"] for s in stacks], width, label=mode,
                yerr=[[result["stacks"][s][mode]["rate"]["median"] - result["stacks"][s][mode]["rate"]["min"]
                       for s in stacks],
                      [result["stacks"][s][mode]["rate"]["max"] - result["stacks"][s][mode]["rate"]["median"]
                       for s in stacks]])
        ax2.bar(xs, [result["stacks"][s][mode]["latency"]["p95_ms"] for s in stacks], width, label=mode)
    for name, base in result["baselines"].items():
        ax1.axhline(base["rate"]["median"], linestyle="--", linewidth=1, color="grey")
        ax1.annotate(f"raw {name}", (len(stacks) - 0.5, base["rate"]["median"]), fontsize=8, color="grey")
    ax1.set_yscale("log")  # raw baselines sit orders of magnitude above the frameworks
    for ax, title in ((ax1, "processing msgs/s (median, min-max; log scale)"), (ax2, "latency p95 ms (paced)")):
        ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(stacks))])
        ax.set_xticklabels(stacks)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle(f"queuekit bench on {result['machine']['cores']} cores")
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return paths
