"""Running the stacks: run (one workload, watched), compare (the matrix), scenarios (what each asks)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from queuekit import brokers
from queuekit.core.config import settings
from queuekit.core.errors import KitError
from queuekit.core.options import QueueType
from queuekit.core.queue_types import QUEUE_TYPES
from queuekit.stacks.registry import stack_names

from .common import STACK_CHOICE, TOPOLOGY, console, kit_settings, say


@click.command()
@click.argument("stack", type=STACK_CHOICE)
@click.argument("workload", type=click.Choice(["signup", "video", "tracking"]))
@click.option("-n", "count", default=200, show_default=True, help="Messages to publish.")
@click.option("--workers", default=2, show_default=True, help="Worker processes.")
@click.option("--malformed", default=0, show_default=True,
              help="Also send this many malformed messages: they must end in the dead-letter place.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for everything to settle.")
@click.option("--queue-type", type=click.Choice(QUEUE_TYPES), default=None,
              help="RabbitMQ stacks: classic or quorum queues (default: the stack's own; celery_quorum = celery "
                   "--queue-type quorum).")
def run(stack: str, workload: str, count: int, workers: int, malformed: int, timeout: float,
        queue_type: QueueType | None) -> None:
    """Publish N messages of WORKLOAD on STACK, show progress until all settled, then print the tally.

    First it resets WORKLOAD on STACK only: that workload's queues / topics / groups / keys and its dead
    letters (made by hand included) are deleted, one line per kind saying what; another workload's stay.
    See docs/by-hand.md.

    Example: queuekit run kafka tracking -n 1000 --workers 2 --malformed 3
    """
    from queuekit.suite import client_logs
    from queuekit.suite.quickrun import quick_run

    s = settings()
    brokers.up(s, say=say)
    with client_logs.to_file(s.home / "runs" / "logs" / "clients.log") as outage:  # not the terminal
        r = quick_run(s, stack, workload, count, workers, malformed, timeout, queue_type=queue_type, say=say)
    for line in outage.summary(f"this run of {stack}/{workload}", injected=False):
        say(line)
    table = Table(title=f"{stack} / {workload}" + (f" ({queue_type} queues)" if queue_type else ""))
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


@click.command()
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
              help="One cell at a time. By default up to 5 lanes run side by side, one per app family "
                   "(celery, dramatiq + dramatiq_quorum, kafka, ...; celery_quorum on a vhost of its own): they share "
                   "no queue, topic or group; a broker-restart cell waits until it has its broker alone.")
@TOPOLOGY
@click.option("--rabbitmq", "rabbitmq", default=None, metavar="VERSIONS",
              help="RabbitMQ version(s), comma-separated: 3.10, 4.0, 4.3, 4 (the newest 4.x). The first runs every "
                   "stack; each further one runs the RabbitMQ stacks again as columns <stack>@<version>, on a node "
                   "of that version beside the kit's, and the report says what changes. Default: 3.10,4 when this "
                   "machine can run 4.x (its root cached, or root + mmdebstrap to build it), else 3.10; "
                   "$QUEUEKIT_RABBITMQ_VERSION, an external broker or --topology cluster: that one version.")
def compare(stacks: tuple[str, ...], names: tuple[str, ...], fmt: str, out: Path, quick: bool, serial: bool,
            topology: str | None, rabbitmq: str | None) -> None:
    """Run every scenario on every stack against real brokers, print the matrix, write the reports.

    Each cell is what was observed (lost, duplicates, order violations, dead
    letters, in-flight, time), marked where it differs from the scenario's
    declared expectation. Writes results.json, report.md and a self-contained
    report.html (charts inline, works offline). A cell that differs from its
    expectation is a finding and is flagged; the exit status is 1 only when a
    cell could not run at all.
    """
    from queuekit.suite import versions as versions_mod

    versions, why = (versions_mod.parse(rabbitmq), None) if rabbitmq else versions_mod.default_versions(kit_settings(topology))
    if versions[0] != kit_settings(topology).rabbitmq_version:
        os.environ["QUEUEKIT_RABBITMQ_VERSION"] = versions[0]  # the kit's node, and every process compare starts
    if kit_settings(topology).clustered:  # the cluster topology's matrix is the faults matrix (one version)
        from .faults import run_faults

        # --stack narrows the framework rows; the raw-client probes always run (the brokers' own promise)
        return run_faults((), (), False, out / time.strftime("%Y%m%d-%H%M%S"), (*stacks, "probes") if stacks else ())
    from queuekit.brokers.rabbitmq_root import beside
    from queuekit.report import markdown, terminal_matrix, write_reports
    from queuekit.suite.compare import brokers_of
    from queuekit.suite.compare import compare as run_compare
    from scenarios import BY_NAME, QUICK, SCENARIOS

    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise KitError(f"unknown scenario(s): {', '.join(unknown)}", f"choose from {', '.join(BY_NAME)}")
    columns = list(stacks) or list(stack_names())
    s = settings()
    others = {v: beside(s, v, step) for step, v in enumerate(versions[1:], 1)} if versions_mod.on_rabbitmq(columns) else {}
    if why and versions_mod.on_rabbitmq(columns):
        say(why)
    if brokers_of(columns):  # the in-memory StubStack (tests only) needs none
        brokers.up(s, say=say)
    started = {v: brokers.up(node, ("rabbitmq",), say) for v, node in others.items()}  # each version's node
    chosen = [BY_NAME[n] for n in names] if names else QUICK if quick else SCENARIOS
    outdir = out / time.strftime("%Y%m%d-%H%M%S")
    try:
        result = run_compare(s, chosen, columns, outdir, parallel=not serial, versions=others)
    finally:
        for v, node in others.items():  # `queuekit down` knows only the kit's own node: stop what compare started
            if started[v]:
                brokers.down(node, tuple(started[v]), say)
    paths = write_reports(result, outdir)
    if fmt == "json":
        click.echo(paths["json"].read_text())
    elif fmt == "markdown":
        click.echo(markdown(result))
    else:
        width = console.width if console.is_terminal else 100  # a log reads at 100 columns (details: report.md)
        Console(width=width).print(terminal_matrix(result, width))
    differ = [c for c in result.cells if c.mismatches]
    errors = [c for c in result.cells if c.error]
    say(f"{len(result.cells)} cells in {result.seconds:.0f}s: {len(differ)} differ from expectation, "
        f"{len(errors)} could not run")
    say(f"reports: {paths['md']}  {paths['html']}  {paths['json']}")
    sys.exit(1 if errors else 0)


@click.command()
def scenarios() -> None:
    """List the scenarios: name, concept, and the question each one answers."""
    from scenarios import SCENARIOS

    table = Table(title="scenarios")
    for col in ("name", "concept", "question"):
        table.add_column(col)
    for sc in SCENARIOS:
        table.add_row(sc.name, sc.concept, sc.question)
    console.print(table)
