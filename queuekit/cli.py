"""The ``queuekit`` command line."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from . import brokers
from .config import settings
from .errors import KitError

console = Console(stderr=True)  # progress and tables for people; --json goes to stdout
COMPONENTS = click.Choice(brokers.NAMES)


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
    from .brokers.kafka import resolve_jars
    from .brokers.rabbitmq import install_rabbitmq

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
    from .roundtrip import kafka_roundtrip, rabbitmq_roundtrip

    s = settings()
    brokers.up(s, ("rabbitmq", "kafka"), say)
    table = Table(title="round trips")
    for col in ("broker", "sent", "received", "seconds", "observed"):
        table.add_column(col)
    for trip in (rabbitmq_roundtrip(s, count), kafka_roundtrip(s, count)):
        table.add_row(trip.broker, str(trip.sent), str(trip.received), f"{trip.seconds:.3f}", trip.detail)
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
