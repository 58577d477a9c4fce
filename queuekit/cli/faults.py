"""The cluster topology's command: every fault case on the 3-node clusters, and the faults report."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from queuekit import brokers

from .common import RABBITMQ_VERSION, kit_settings, say


@click.command()
@click.option("--broker", "brokers_", multiple=True, type=click.Choice(["rabbitmq", "kafka", "redis"]),
              help="Only this broker's cluster (repeatable).")
@click.option("--fault", "kinds", multiple=True, type=click.Choice(["kill", "pause", "partition", "partition-clients"]),
              help="Only this fault (repeatable).")
@click.option("--stack", "stacks", multiple=True,
              help="Only this framework stack's cases (repeatable); 'probes' = only the raw-client probes.")
@click.option("--ci", "ci_only", is_flag=True, help="Only the CI subset (about 3-4 minutes).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@RABBITMQ_VERSION
def faults(brokers_: tuple[str, ...], kinds: tuple[str, ...], stacks: tuple[str, ...], ci_only: bool,
           out: Path) -> None:
    """Start the 3-node clusters, run every cluster scenario through real faults, write the faults report.

    Each case: a keyed stream through a kill / pause / partition of its queue's or partition's leader;
    confirmed-but-lost, duplicates, unexpected, order violations and the unavailability window.
    Writes faults.json, faults.md, faults.html (timelines inline) and faults-timeline.png to OUT/<timestamp>/.
    """
    run_faults(brokers_, kinds, ci_only, out / time.strftime("%Y%m%d-%H%M%S"), stacks)


def run_faults(brokers_: tuple[str, ...], kinds: tuple[str, ...], ci_only: bool, outdir: Path,
               stacks: tuple[str, ...] = ()) -> None:
    from queuekit.report import faults as faults_report
    from queuekit.suite import client_logs
    from queuekit.suite.faults import run_cases
    from scenarios.cluster_faults import CASES

    s = kit_settings("cluster")
    brokers.up(s, tuple(brokers_) or None, say)
    cases = [c for c in CASES if (not brokers_ or c.broker in brokers_) and (not kinds or c.fault in kinds)
             and (c.ci or not ci_only) and (not stacks or dict(c.options).get("stack", "probes") in stacks)]
    # The clients' own lines (librdkafka's "Connection refused", pika's reconnects) are what a fault makes
    # them say: into OUT/<timestamp>/logs/clients.log, not between the progress lines.
    with client_logs.to_file(outdir / "logs" / "clients.log"):
        rows = faults_report.rows_of(run_cases(s, cases, say=say))
    paths = faults_report.write(rows, outdir)
    click.echo(faults_report.markdown(rows))
    say(f"{len(rows)} fault cases: {sum(r['verdict'] == 'BROKEN' for r in rows)} broke a promise, "
        f"{sum(r['verdict'] == 'error' for r in rows)} could not run")
    say("reports: " + "  ".join(str(p) for p in paths.values()))
    sys.exit(1 if any(r["verdict"] == "error" for r in rows) else 0)
