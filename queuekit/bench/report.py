"""The bench's terminal tables and charts (PNG + SVG) from its JSON result."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table


def _range(r: dict) -> str:
    return f"{r['min']:,.0f}–{r['max']:,.0f}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def _ref(ref: dict, digits: int = 2) -> str:
    return "–" if ref["rate"] is None else f"{ref['rate']:,.0f} ({ref['stack_ratio']:.{digits}f}x)"


_NONE = {"rate": {"median": 0, "min": 0, "max": 0}, "cpu_us": {"median": 0}}  # a stack without a bare twin


def tables(result: dict[str, Any]) -> list[Table]:
    m = result["machine"]
    head = Table(title=f"queuekit bench — {m['cores']} cores, {m['cpu']} (load {result['load_before'][0]:.1f}"
                       f" before, {result['load_after'][0]:.1f} after)")
    for col in ("stack", "mode", "stack msgs/s", "min–max", "spread", "bare msgs/s", "min–max", "overhead",
                "publish msgs/s"):
        head.add_column(col, justify="left" if col in ("stack", "mode") else "right")
    for stack, s in result["stacks"].items():
        for mode, r in s["modes"].items():
            st, bare = r["stack"]["rate"], (r["bare"] or _NONE)["rate"]
            head.add_row(stack, mode, f"{st['median']:,.0f}", _range(st), _pct(st["spread"]), f"{bare['median']:,.0f}",
                         _range(bare), _pct(r["overhead"]), f"{r['stack']['publish_rate']['median']:,.0f}")
    head.caption = "overhead = 1 - stack/bare (target <= 5% in noop); spread = (max-min)/median (target < 10%)"

    refs = Table(title="noop: each stack against its references (msgs/s; x = stack / reference)")
    for col in ("stack", "stack", "bare framework", "raw client", "broker tool"):
        refs.add_column(col, justify="left" if col == "stack" and not refs.columns else "right")
    for stack, s in result["stacks"].items():
        r = s["references"]
        refs.add_row(stack, f"{s['modes']['noop']['stack']['rate']['median']:,.0f}",
                     *(_ref(r[k], 3) for k in
                       ("bare_framework", "raw_client", "broker_tool")))
    raw, ceil = result["raw"], result["ceilings"]
    refs.caption = (f"raw pika {raw['rabbitmq']['rate']['median']:,.0f}, raw confluent-kafka "
                    f"{raw['kafka']['rate']['median']:,.0f}, Kafka batch consumer (written for throughput) "
                    f"{raw['kafka_batch']['rate']['median']:,.0f} = {raw['kafka_batch']['ratio_to_raw']:.2f}x raw; "
                    f"PerfTest {ceil['rabbitmq']['rate']:,.0f}, ConsumerPerformance {ceil['kafka']['rate']:,.0f}"
                    + (f"; raw redis-py {raw['redis']['rate']['median']:,.0f}, redis-benchmark {ceil['redis']['rate']:,.0f}"
                       if "redis" in raw else ""))

    curves = Table(title="noop curves (msgs/s; latency from intended send time, open loop)")
    for col in ("stack", "by worker processes", "by payload bytes", "load", "offered", "p50 ms", "p99 ms"):
        curves.add_column(col, justify="left" if col == "stack" else "right")
    for stack, s in result["stacks"].items():
        sc = s["scaling"]
        workers = "  ".join(f"{w}:{p['rate']:,.0f}" for w, p in sc["workers"].items())
        sizes = "  ".join(f"{b}:{p['rate']:,.0f}" for b, p in sc["payload_bytes"].items())
        for i, point in enumerate(s["latency"]):
            curves.add_row(stack if i == 0 else "", workers if i == 0 else "", sizes if i == 0 else "",
                           f"{point['load']:.0%}", f"{point['offered']:,.0f}", _ms(point['p50_ms']),
                           _ms(point['p99_ms']))
        if raw := s.get("raw_latency"):  # its raw client at the same offered rates (bench JSONs since issue 24)
            for i, point in enumerate(raw["points"]):
                curves.add_row(f"  raw {raw['client']}" if i == 0 else "", "", "", f"{point['load']:.0%}",
                               f"{point['offered']:,.0f}", _ms(point['p50_ms']), _ms(point['p99_ms']))
    return [head, refs, curves]


def hop_cell(point: dict) -> str:
    """A point's median ms per hop of its sampled messages ("–" before hops were recorded)."""
    hops = point.get("hops") or {}
    return " · ".join(f"{hop} {ms:,.1f}" for hop, ms in hops.get("median_ms", {}).items()) or "–"


def raw_rows(result: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(row label, curve points) for each stack and, under it, its raw client's curve where measured."""
    rows = []
    for stack, s in result["stacks"].items():
        rows.append((stack, s["latency"]))
        if raw := s.get("raw_latency"):
            rows.append((f"↳ raw {raw['client']} (for {stack})", raw["points"]))
    return rows


def chart(result: dict[str, Any], stem: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(result["stacks"])
    fig, ((ax1, ax2), (ax3, ax4)) = plt.subplots(2, 2, figsize=(13, 9))
    # 1. noop: stack vs bare framework, with the raw clients and broker tools as lines
    xs = range(len(stacks))
    for offset, kind in ((-0.2, "stack"), (0.2, "bare")):
        rates = [(result["stacks"][s]["modes"]["noop"][kind] or _NONE)["rate"] for s in stacks]
        ax1.bar([x + offset for x in xs], [r["median"] for r in rates], 0.4, label=kind,
                yerr=[[r["median"] - r["min"] for r in rates], [r["max"] - r["median"] for r in rates]])
    lines = {"raw pika": result["raw"]["rabbitmq"]["rate"]["median"],
             "raw confluent-kafka": result["raw"]["kafka"]["rate"]["median"],
             "kafka batch consumer": result["raw"]["kafka_batch"]["rate"]["median"],
             "PerfTest": result["ceilings"]["rabbitmq"]["rate"], "ConsumerPerformance": result["ceilings"]["kafka"]["rate"]}
    if "redis" in result["raw"]:
        lines.update({"raw redis-py": result["raw"]["redis"]["rate"]["median"],
                      "redis-benchmark": result["ceilings"]["redis"]["rate"]})
    for (name, rate), style in zip(lines.items(), ("--", "--", ":", "-.", "-.", "--", "-.")):
        ax1.axhline(rate, linestyle=style, linewidth=1, color="grey")
        ax1.annotate(name, (len(stacks) - 0.6, rate), fontsize=7, color="grey", va="bottom")
    ax1.set_yscale("log")
    ax1.set_xticks(list(xs))
    ax1.set_xticklabels(stacks)
    ax1.set_title("noop msgs/s: stack vs bare framework (log; lines: raw clients, broker tools)")
    ax1.legend(fontsize=8)
    # 2. throughput vs worker processes
    for s in stacks:
        points = result["stacks"][s]["scaling"]["workers"]
        ax2.plot([int(w) for w in points], [p["rate"] for p in points.values()], marker="o", label=s)
    ax2.set_xlabel("worker processes")
    ax2.set_title("noop msgs/s vs worker processes")
    # 3. throughput vs payload size
    size0 = result["fairness"]["payload_bytes"]
    for s in stacks:
        points = result["stacks"][s]["scaling"]["payload_bytes"]
        ax3.plot([size0 if b == "natural" else int(b) for b in points], [p["rate"] for p in points.values()],
                 marker="o", label=s)
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    ax3.set_xlabel("payload bytes")
    ax3.set_title("noop msgs/s vs payload size")
    # 4. latency vs offered load
    for s in stacks:
        points = result["stacks"][s]["latency"]
        loads = [p["load"] * 100 for p in points]
        line, = ax4.plot(loads, [p["p50_ms"] for p in points], marker="o", label=f"{s} p50")
        ax4.plot(loads, [p["p99_ms"] for p in points], marker="^", linestyle="--", color=line.get_color(),
                 label=f"{s} p99")
        if raw := result["stacks"][s].get("raw_latency"):  # its raw client at the same rates: the floor
            ax4.plot([p["load"] * 100 for p in raw["points"]], [p["p50_ms"] for p in raw["points"]], marker="x",
                     linestyle=":", color=line.get_color(), label=f"{s}: raw {raw['client']} p50")
    ax4.set_yscale("log")
    ax4.set_xlabel("offered load, % of the stack's measured max")
    ax4.set_ylabel("ms from intended send time")
    ax4.set_title("latency vs offered load (open loop; dotted: the raw client at the same rates)")
    for ax in (ax2, ax3):
        ax.legend(fontsize=8)
    ax4.legend(fontsize=6, ncol=2)  # three lines per stack (p50, p99, its raw client's p50)
    for ax in (ax2, ax3, ax4):
        ax.grid(alpha=0.3)
    fig.suptitle(f"queuekit bench, {result['started']}, {result['machine']['cores']} cores "
                 f"(load {result['load_before'][0]:.1f})")
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return paths


def markdown(result: dict[str, Any]) -> str:
    """The README's Performance tables from a bench JSON (``python -m queuekit.bench.report FILE``)."""
    fmt = lambda r: f"{r['median']:,.0f} ({r['min']:,.0f}–{r['max']:,.0f})"  # noqa: E731
    lines = ["| stack | mode | stack msgs/s (min–max) | bare framework msgs/s (min–max) | overhead (rate) |"
             " worker CPU µs/msg stack / bare | overhead (CPU) |", "|---|---|---:|---:|---:|---:|---:|"]
    for stack, s in result["stacks"].items():
        for mode, r in s["modes"].items():
            twin = r["bare"] or _NONE
            lines.append(f"| {stack} | {mode} | {fmt(r['stack']['rate'])} | {fmt(twin['rate']) if r['bare'] else '–'} | "
                         f"{_pct(r['overhead'])} | {r['stack']['cpu_us']['median']:,.0f} / "
                         f"{format(twin['cpu_us']['median'], ',.0f') if r['bare'] else '–'} | {_pct(r['overhead_cpu'])} |")
    lines += ["", "| noop, msgs/s | stack | bare framework | raw Python client | broker's own tool |",
              "|---|---:|---:|---:|---:|"]
    for stack, s in result["stacks"].items():
        r = s["references"]
        cells = [_ref(r[k]) for k in ("bare_framework", "raw_client", "broker_tool")]
        lines.append(f"| {stack} | {s['modes']['noop']['stack']['rate']['median']:,.0f} | " + " | ".join(cells) + " |")
    raw, ceil = result["raw"], result["ceilings"]
    pub = {name: f"{raw[name]['publish_rate']['median']:,.0f}" for name in ("rabbitmq", "kafka")}
    lines += ["", "| reference | consume msgs/s (min–max) | publish msgs/s |", "|---|---:|---:|",
              f"| raw pika consume + ack | {fmt(raw['rabbitmq']['rate'])} | {pub['rabbitmq']} |",
              f"| raw confluent-kafka poll + store | {fmt(raw['kafka']['rate'])} | {pub['kafka']} |",
              f"| Kafka batch consumer, written for throughput ({raw['kafka_batch']['ratio_to_raw']:.2f}x raw) | "
              f"{fmt(raw['kafka_batch']['rate'])} | {raw['kafka_batch']['publish_rate']['median']:,.0f} |",
              f"| {ceil['rabbitmq']['tool']} | {ceil['rabbitmq']['rate']:,.0f} | {ceil['rabbitmq']['publish_rate']:,.0f} |",
              f"| {ceil['kafka']['tool']} | {ceil['kafka']['rate']:,.0f} | {ceil['kafka']['publish_rate']:,.0f} |"]
    if "redis" in raw:
        lines += [f"| raw redis-py XREADGROUP + XACK | {fmt(raw['redis']['rate'])} | "
                  f"{raw['redis']['publish_rate']['median']:,.0f} |",
                  f"| {ceil['redis']['tool']} (XREADGROUP NOACK / XADD, -P 1) | {ceil['redis']['rate']:,.0f} | "
                  f"{ceil['redis']['publish_rate']:,.0f} |"]
    sizes = [k for k in next(iter(result["stacks"].values()))["scaling"]["payload_bytes"]]
    workers = [k for k in next(iter(result["stacks"].values()))["scaling"]["workers"]]
    lines += ["", "| noop msgs/s | " + " | ".join(f"{w} worker(s)" for w in workers) + " | "
              + " | ".join(f"{b} B" if b != "natural" else f"{result['fairness']['payload_bytes']} B" for b in sizes)
              + " |", "|---|" + "---:|" * (len(workers) + len(sizes))]
    for stack, s in result["stacks"].items():
        sc = s["scaling"]
        lines.append(f"| {stack} | " + " | ".join(f"{sc['workers'][w]['rate']:,.0f}" for w in workers) + " | "
                     + " | ".join(f"{sc['payload_bytes'][b]['rate']:,.0f}" for b in sizes) + " |")
    loads = [p["load"] for p in next(iter(result["stacks"].values()))["latency"]]
    lines += ["", "| latency p50 / p99 ms (open loop) | " + " | ".join(f"{x:.0%} load" for x in loads) + " |",
              "|---|" + "---:|" * len(loads)]
    for label, points in raw_rows(result):
        lines.append(f"| {label} | " + " | ".join(
            f"{_ms(p['p50_ms'])} / {_ms(p['p99_ms'])}{' *' if p['producer_bound'] else ''}" for p in points) + " |")
    lines.append("")
    lines.append("`*` the paced producer fell behind its schedule (achieved < 95% of offered): that delay is in the "
                 "latency, as it should be, but the point is partly the producer's."
                 + (" `↳ raw` rows: the broker's raw Python client at the same offered rates, paced by the same code "
                    "(decode, record, ack: no framework)." if any(s.get("raw_latency") for s in result["stacks"].values())
                    else ""))
    if any(p.get("hops") for _, points in raw_rows(result) for p in points):
        lines += ["", f"| where the time goes at {loads[0]:.0%} load: median ms per hop, sampled messages | hops |",
                  "|---|---|"]
        lines += [f"| {label} | {hop_cell(points[0])} |" for label, points in raw_rows(result) if points]
        lines.append("")
        lines.append("Stamps: intended (the schedule), published (the publish call began), appended (the broker's "
                     "own time: Kafka LogAppendTime on the raw topic, the stream chunk's, the Redis entry id's; "
                     "millisecond resolution, truncated), fetched (the raw client handed it over), started (decoded), "
                     "completed (recorded). A stamp not seen is skipped and its hop spans the gap: where a framework "
                     "fetches (Celery, Dramatiq, RQ, ...), a stack's `published->started` holds the broker, the "
                     "transport and the framework's delivery; the kit's Kafka, share-group, stream and Redis Streams "
                     "adapters stamp `fetched`.")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
