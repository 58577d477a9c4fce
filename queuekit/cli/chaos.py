"""``queuekit chaos``: faults in a loop under load, a live tally, then a Jepsen-style count."""
from __future__ import annotations

import json
import sys

import click
from rich.live import Live
from rich.table import Table

from queuekit import brokers
from queuekit.core.config import settings

from .common import STACK_CHOICE, console, say


@click.command()
@click.argument("stack", type=STACK_CHOICE)
@click.option("--mode", type=click.Choice(["kill", "restart", "both"]), default="kill", show_default=True,
              help="kill: SIGKILL a worker (and start a replacement); restart: stop/start the broker; both: alternate.")
@click.option("--seconds", default=30.0, show_default=True, help="How long the loop runs.")
@click.option("--every", default=1.5, show_default=True, help="Seconds between faults.")
@click.option("--workload", type=click.Choice(["signup", "video", "tracking"]), default="signup", show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--rate", default=100.0, show_default=True, help="Messages per second published meanwhile.")
@click.option("--json", "as_json", is_flag=True, help="Print the final count as JSON to stdout.")
def chaos(stack: str, mode: str, seconds: float, every: float, workload: str, workers: int, rate: float,
          as_json: bool) -> None:
    """Faults in a loop under load, a live tally, then a Jepsen-style count (lost, duplicates, unexpected).

    Example: queuekit chaos kafka --mode kill --seconds 60
    """
    from queuekit.suite.chaos import run_chaos

    s = settings()
    brokers.up(s, say=say)
    with Live(console=console, refresh_per_second=4) as live:
        tally = run_chaos(s, stack, mode=mode, seconds=seconds, every=every, workload=workload, workers=workers,
                          rate=rate, show=lambda t: live.update(_tally_table(t)))
    if as_json:
        click.echo(json.dumps(tally.as_dict(), indent=2))
    sys.exit(0 if tally.lost == 0 and tally.unexpected == 0 else 1)


def _tally_table(t) -> Table:
    table = Table(title=f"chaos: {t.stack}, {t.mode} every fault, {t.seconds:g} s")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for name in ("kills", "restarts", "confirmed", "refused", "indeterminate", "effects", "attempts",
                 "dead_letters", "lost", "duplicates", "unexpected", "recovered"):
        table.add_row(name.replace("_", " "), str(getattr(t, name)))
    return table
