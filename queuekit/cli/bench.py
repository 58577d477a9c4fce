"""Measuring and watching: bench (each stack vs its bare framework, raw client and broker tool) and monitor."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from queuekit import brokers
from queuekit.core.config import settings

from .common import STACK_CHOICE, console, say


@click.command()
@click.option("--quick", is_flag=True, help="A smoke look in about two minutes (small N, 1 repeat, noop, one point per curve).")
@click.option("-n", "count", type=int, help="Messages per noop measurement on every stack (default: sized to ~4 s of "
              "each stack's calibrated rate, 2,000-400,000).")
@click.option("--repeats", type=int, help="Repeats per measurement (default 3; quick 1).")
@click.option("--stack", "stacks", multiple=True, type=STACK_CHOICE)
@click.option("--mode", "modes", multiple=True, type=click.Choice(["noop", "io", "cpu"]))
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results"), show_default=True)
def bench(quick: bool, count: int | None, repeats: int | None, stacks: tuple[str, ...], modes: tuple[str, ...],
          out: Path) -> None:
    """Each stack's msgs/s beside its bare framework, raw client and broker tool; scaling and latency curves.

    Same worker processes x slots, late acks, confirms / acks=all, durable +
    persistent, matched prefetch and partitions = slots everywhere; steady-state
    rates over repeats (median, min-max). Writes OUT/bench-<timestamp>.json and
    charts (.png, .svg); prints the tables. Speed targets live here, never in tests.
    """
    from dataclasses import replace

    from queuekit.bench import BenchConfig, run_bench
    from queuekit.bench.report import chart, tables

    cfg = BenchConfig.quick() if quick else BenchConfig()
    changes: dict[str, Any] = {"repeats": repeats} if repeats else {}
    if count:
        changes.update(n_min=count, n_max=count, n_calibrate=0)
    if stacks:
        changes["stacks"] = stacks
    if modes:
        changes["modes"] = tuple(dict.fromkeys(("noop", *modes)))  # noop feeds the references and the curves
    cfg = replace(cfg, **changes)
    s = settings()
    brokers.up(s, ("rabbitmq", "kafka", *(("redis",) if cfg.on_redis else ())), say)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{stamp}.json"
    # Written after each stack too: a run that fails late keeps what it measured (a partial JSON, no charts).

    def checkpoint(part: dict) -> None:
        path.write_text(json.dumps(part, indent=2))

    result = run_bench(s, cfg, out / f"work-{stamp}", say, checkpoint)
    path.write_text(json.dumps(result, indent=2))
    charts = chart(result, out / f"bench-{stamp}")
    wide = Console(width=max(console.width, 140))
    for t in tables(result):
        wide.print(t)
    say(f"wrote {path} and {', '.join(str(c) for c in charts)} ({result['seconds']:.0f} s)")


@click.command()
@click.option("--once", is_flag=True, help="Take one snapshot and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the snapshot as JSON to stdout.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
def monitor(once: bool, as_json: bool, interval: float) -> None:
    """One live view across the stacks: RabbitMQ queues (ready, unacked, consumers, DLQ), Kafka consumer
    groups (members, lag per partition) and DLQ topics, Celery workers from Flower. Ctrl-C to leave."""
    from rich.live import Live

    from queuekit.live.monitor import render, snapshot

    s = settings()
    if once:
        snap = snapshot(s)
        click.echo(json.dumps(snap, indent=2)) if as_json else console.print(render(snap))
        return
    with Live(render(snapshot(s)), console=console, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(interval)  # the refresh period of a live display
                live.update(render(snapshot(s)))
        except KeyboardInterrupt:
            pass
