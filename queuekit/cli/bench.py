"""Measuring and watching: bench (msgs/s and latency vs raw clients) and monitor (the live view)."""
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
@click.option("--quick", is_flag=True, help="A smoke look in about a minute (300 msgs, 1 repeat).")
@click.option("-n", "count", type=int, help="Messages per measurement (default 2000; quick 300).")
@click.option("--repeats", type=int, help="Repeats per measurement (default 3; quick 1).")
@click.option("--stack", "stacks", multiple=True, type=STACK_CHOICE)
@click.option("--mode", "modes", multiple=True, type=click.Choice(["noop", "io", "cpu"]))
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results"), show_default=True)
def bench(quick: bool, count: int | None, repeats: int | None, stacks: tuple[str, ...], modes: tuple[str, ...],
          out: Path) -> None:
    """Throughput and latency per stack and mode, beside raw pika / confluent-kafka baselines.

    Same worker processes x slots, late acks, durable + persistent / acks=all,
    matched prefetch and partitions = slots for every stack; payloads built
    before timing; warm-up excluded; repeats reported as median and min-max.
    Writes OUT/<timestamp>.json and a chart (.png, .svg); prints a table.
    Speed targets live here, never in the tests.
    """
    from dataclasses import replace

    from queuekit.bench import BenchConfig, run_bench
    from queuekit.bench.report import chart, table

    cfg = BenchConfig.quick() if quick else BenchConfig()
    changes: dict[str, Any] = {k: v for k, v in (("n", count), ("repeats", repeats)) if v}
    if stacks:
        changes["stacks"] = stacks
    if modes:
        changes["modes"] = modes
    cfg = replace(cfg, **changes)
    s = settings()
    brokers.up(s, ("rabbitmq", "kafka"), say)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = run_bench(s, cfg, out / f"work-{stamp}", say)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    charts = chart(result, out / f"bench-{stamp}")
    Console(width=max(console.width, 130)).print(table(result))
    say(f"wrote {path} and {', '.join(str(c) for c in charts)}")


@click.command()
@click.option("--once", is_flag=True, help="Take one snapshot and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the snapshot as JSON to stdout.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
def monitor(once: bool, as_json: bool, interval: float) -> None:
    """One live view across the stacks: RabbitMQ queues (ready, unacked, consumers, DLQ), Kafka consumer
    groups (members, lag per partition) and DLQ topics, Celery workers from Flower. Ctrl-C to leave."""
    from rich.live import Live

    from queuekit.report.monitor import render, snapshot

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
