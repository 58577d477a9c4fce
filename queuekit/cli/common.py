"""What every command module shares: the console, one-line progress, stack names as a click choice."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from queuekit import brokers
from queuekit.stacks.registry import stack_names

console = Console(stderr=True)  # progress and tables for people; --json goes to stdout


TOPOLOGY = click.option("--topology", type=click.Choice(["single", "cluster"]), default=None,
                        help="single: one node per broker; cluster: 3 RabbitMQ + 3 Kafka nodes + a Redis primary, 2 replicas "
                             "and 3 Sentinels, each node in its own "
                             "network namespace (default: $QUEUEKIT_TOPOLOGY, else single).")


def _rabbitmq_version(_ctx, _param, value: str | None) -> str | None:
    """--rabbitmq sets QUEUEKIT_RABBITMQ_VERSION for this command and every process it starts."""
    if value:
        import os

        from queuekit.brokers.rabbitmq_root import resolve_version

        os.environ["QUEUEKIT_RABBITMQ_VERSION"] = resolve_version(value)  # a clear error for an unknown one
    return value


RABBITMQ_VERSION = click.option(
    "--rabbitmq", "rabbitmq_version", default=None, expose_value=False, callback=_rabbitmq_version,
    help="RabbitMQ version: 3.10 (the host's package), 4.0 (Debian 13), 4.3 (Debian unstable) or 4 "
         "(the newest 4.x); 4.x runs from a Debian root the kit builds once "
         "(default: $QUEUEKIT_RABBITMQ_VERSION, else 3.10).")


def kit_settings(topology: str | None = None):
    """The environment's settings, with --topology winning over QUEUEKIT_TOPOLOGY."""
    from queuekit.core.config import settings

    s = settings()
    return s.with_(topology=topology) if topology else s


def say(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}")


class StackChoice(click.Choice):
    """Every registered stack, read from the registry when the command runs (no list of names here)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self):
        return stack_names()

    @choices.setter
    def choices(self, _value) -> None:
        pass


STACK_CHOICE = StackChoice()


def print_status(rows: list[brokers.Status]) -> None:
    table = Table(title="queuekit brokers")
    for col in ("component", "health", "managed by", "pid", "version", "url"):
        table.add_column(col)
    for r in rows:
        health = "[green]up[/green]" if r.healthy else f"[red]down[/red] {r.detail}"
        table.add_row(r.name, health, r.managed, str(r.pid or "-"), r.version or "-", r.url)
    console.print(table)
