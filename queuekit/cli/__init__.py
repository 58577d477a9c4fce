"""The ``queuekit`` command line."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from queuekit import brokers
from queuekit.core.config import settings
from queuekit.core.errors import KitError
from queuekit.stacks.registry import stack_names

console = Console(stderr=True)  # progress and tables for people; --json goes to stdout
COMPONENTS = click.Choice(brokers.NAMES)
STACK_CHOICE = click.Choice(stack_names())  # every registered stack, no list of names here


def say(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}")


class KitGroup(click.Group):
    """Turns a KitError anywhere below into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KitError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=KitGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Compare Celery, Dramatiq and Kafka consumer groups on real brokers.

    The kit starts its own RabbitMQ (with the management plugin), Kafka
    (KRaft, one node) and Flower as child processes bound to 127.0.0.1, with
    state under $QUEUEKIT_HOME (default ~/.cache/queuekit). Point it at your
    own brokers with QUEUEKIT_AMQP_URL / QUEUEKIT_KAFKA_BOOTSTRAP instead.
    """


@cli.command()
@click.argument("components", nargs=-1, type=COMPONENTS)
def up(components: tuple[str, ...]) -> None:
    """Provision (first run) and start the brokers; reuse whatever already runs.

    COMPONENTS: any of rabbitmq, kafka, flower (default: all).
    """
    started = brokers.up(settings(), components or None, say)
    say(f"started: {', '.join(started)}" if started else "everything was already running")
    _print_status(brokers.statuses(settings(), components or None))


@cli.command()
@click.argument("components", nargs=-1, type=COMPONENTS)
def down(components: tuple[str, ...]) -> None:
    """Stop what the kit started (SIGTERM, then SIGKILL). External brokers are never touched."""
    stopped = brokers.down(settings(), components or None, say)
    say(f"stopped: {', '.join(stopped)}" if stopped else "nothing of the kit's was running")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
def status(as_json: bool) -> None:
    """Show each component: URL, who manages it, pid, version, health. Exit 1 if any is unhealthy."""
    rows = brokers.statuses(settings())
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        _print_status(rows)
    sys.exit(0 if all(r.healthy for r in rows) else 1)


@cli.command()
def provision() -> None:
    """Install what the brokers need (apt rabbitmq-server, Kafka jars from Maven Central), start nothing."""
    from queuekit.brokers.kafka import resolve_jars
    from queuekit.brokers.rabbitmq import install_rabbitmq

    s = settings()
    if not s.external_amqp_url:
        install_rabbitmq(say)
    if not s.external_kafka_bootstrap:
        libs, version = resolve_jars(s, say)
        say(f"Kafka {version}: {libs}")
    say("provisioned")


@cli.command()
@click.option("-n", "count", default=10, show_default=True, help="Messages per broker.")
def ping(count: int) -> None:
    """Send real messages through each broker and read them back (brings brokers up if needed)."""
    from queuekit.brokers.roundtrip import kafka_roundtrip, rabbitmq_roundtrip

    s = settings()
    brokers.up(s, ("rabbitmq", "kafka"), say)
    table = Table(title="round trips")
    for col in ("broker", "sent", "received", "seconds", "observed"):
        table.add_column(col)
    for trip in (rabbitmq_roundtrip(s, count), kafka_roundtrip(s, count)):
        table.add_row(trip.broker, str(trip.sent), str(trip.received), f"{trip.seconds:.3f}", trip.detail)
    console.print(table)


@cli.command()
@click.argument("stack", type=STACK_CHOICE)
@click.argument("workload", type=click.Choice(["signup", "video", "tracking"]))
@click.option("-n", "count", default=200, show_default=True, help="Messages to publish.")
@click.option("--workers", default=2, show_default=True, help="Worker processes.")
@click.option("--malformed", default=0, show_default=True,
              help="Also send this many malformed messages: they must end in the dead-letter place.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for everything to settle.")
def run(stack: str, workload: str, count: int, workers: int, malformed: int, timeout: float) -> None:
    """Publish N messages of WORKLOAD on STACK, show progress until all settled, then print the tally.

    Example: queuekit run kafka tracking -n 1000 --workers 2 --malformed 3
    """
    from queuekit.suite.quickrun import quick_run

    s = settings()
    brokers.up(s, say=say)
    r = quick_run(s, stack, workload, count, workers, malformed, timeout)
    table = Table(title=f"{stack} / {workload}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("published (confirmed)", str(r.published))
    for service, n in r.effects.items():
        table.add_row(f"effects {service}", str(n))
        table.add_row(f"duplicates {service}", str(r.duplicates[service]))
    table.add_row("malformed sent", str(r.malformed))
    table.add_row("dead letters", str(r.dead_letters))
    for reason in r.dead_letter_reasons:
        table.add_row("  reason", reason)
    table.add_row("publish time", f"{r.publish_seconds:.2f}s")
    table.add_row("time to all effects", f"{r.seconds:.2f}s")
    table.add_row("time to settled (broker empty)", f"{r.settle_seconds:.2f}s")
    table.add_row("msgs/s (publish to last effect)", f"{r.rate:.0f}")
    console.print(table)


@cli.command()
@click.option("--stack", "stacks", multiple=True, type=STACK_CHOICE,
              help="Only this stack (repeatable). Default: every registered stack.")
@click.option("--scenario", "names", multiple=True, metavar="NAME",
              help="Only this scenario (repeatable). See `queuekit scenarios`.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table", show_default=True,
              help="How the matrix is printed to the terminal.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Reports go to OUT/<timestamp>/.")
@click.option("--quick", is_flag=True,
              help="Only the scenarios a design review asks about first (work distribution, fan-out, ordering, "
                   "poison, early-ack crash, replay).")
@click.option("--serial", is_flag=True,
              help="One cell at a time. By default RabbitMQ and Kafka cells run side by side (they share nothing).")
def compare(stacks: tuple[str, ...], names: tuple[str, ...], fmt: str, out: Path, quick: bool, serial: bool) -> None:
    """Run every scenario on every stack against real brokers, print the matrix, write the reports.

    Each cell is what was observed (lost, duplicates, order violations, dead
    letters, in-flight, time), marked where it differs from the scenario's
    declared expectation. Writes results.json, report.md and a self-contained
    report.html (charts inline, works offline). A cell that differs from its
    expectation is a finding and is flagged; the exit status is 1 only when a
    cell could not run at all.
    """
    from queuekit.report import markdown, terminal_matrix, write_reports
    from queuekit.suite.compare import compare as run_compare
    from scenarios import BY_NAME, QUICK, SCENARIOS

    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise KitError(f"unknown scenario(s): {', '.join(unknown)}", f"choose from {', '.join(BY_NAME)}")
    s = settings()
    brokers.up(s, say=say)
    chosen = [BY_NAME[n] for n in names] if names else QUICK if quick else SCENARIOS
    outdir = out / time.strftime("%Y%m%d-%H%M%S")
    result = run_compare(s, chosen, list(stacks) or list(stack_names()), outdir, parallel=not serial)
    paths = write_reports(result, outdir)
    if fmt == "json":
        click.echo(paths["json"].read_text())
    elif fmt == "markdown":
        click.echo(markdown(result))
    else:
        Console(width=max(console.width, 140)).print(terminal_matrix(result))
    differ = [c for c in result.cells if c.mismatches]
    errors = [c for c in result.cells if c.error]
    say(f"{len(result.cells)} cells in {result.seconds:.0f}s: {len(differ)} differ from expectation, "
        f"{len(errors)} could not run")
    say(f"reports: {paths['md']}  {paths['html']}  {paths['json']}")
    sys.exit(1 if errors else 0)


@cli.command()
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
    changes = {k: v for k, v in (("n", count), ("repeats", repeats)) if v}
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


@cli.command()
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


@cli.command()
def scenarios() -> None:
    """List the scenarios: name, concept, and the question each one answers."""
    from scenarios import SCENARIOS

    table = Table(title="scenarios")
    for col in ("name", "concept", "question"):
        table.add_column(col)
    for sc in SCENARIOS:
        table.add_row(sc.name, sc.concept, sc.question)
    console.print(table)


def _print_status(rows: list[brokers.Status]) -> None:
    table = Table(title="queuekit brokers")
    for col in ("component", "health", "managed by", "pid", "version", "url"):
        table.add_column(col)
    for r in rows:
        health = "[green]up[/green]" if r.healthy else f"[red]down[/red] {r.detail}"
        table.add_row(r.name, health, r.managed, str(r.pid or "-"), r.version or "-", r.url)
    console.print(table)


def main() -> None:
    cli(prog_name="queuekit")
