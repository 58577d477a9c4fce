"""Running things by hand: a stack's workers the framework's own way (``worker``), the brokers' own tools
(``tool``), and what took effect or was dead-lettered (``effects``)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from queuekit import brokers
from queuekit.core.config import settings
from workloads import WORKLOADS

from .common import STACK_CHOICE, say


@click.command()
@click.argument("stack", type=STACK_CHOICE)
@click.option("--workload", "workloads", multiple=True, type=click.Choice(list(WORKLOADS)),
              help="Consume this workload's queues/topics (repeatable). Default: all three.")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--concurrency", default=1, show_default=True, help="Slots (threads) per worker process.")
@click.option("--prefetch", default=1, show_default=True, help="Unacked messages per slot (RabbitMQ stacks).")
@click.option("--ledger", type=click.Path(path_type=Path), envvar="QUEUEKIT_LEDGER",
              help="Where effects are recorded. Default: $QUEUEKIT_LEDGER, else $QUEUEKIT_HOME/by-hand/STACK.sqlite "
                   "(one per stack: see `queuekit effects`).")
@click.option("--print", "print_only", is_flag=True, help="Declare the topology, print the commands, start nothing.")
def worker(stack: str, workloads: tuple[str, ...], workers: int, concurrency: int, prefetch: int,
           ledger: Path | None, print_only: bool) -> None:
    """Run STACK's workers in the foreground, the framework's own way; Ctrl-C stops them (warm shutdown).

    Declares the queues/topics, prints the environment and the exact command
    (celery worker, dramatiq, python -m kafka_app.worker) so you can run it
    yourself, then runs it with each line prefixed by the worker's name.
    """
    from queuekit.core.options import StackOptions
    from queuekit.stacks import by_hand
    from queuekit.stacks.registry import load_stack

    s = settings()
    brokers.up(s, (load_stack(stack).capabilities.broker,), say)
    ledger = (ledger or by_hand.default_ledger(s, stack)).resolve()
    ledger.parent.mkdir(parents=True, exist_ok=True)
    options = StackOptions(workers=workers, concurrency=concurrency, prefetch=prefetch)
    commands = by_hand.prepare(s, stack, workloads or tuple(WORKLOADS), options, ledger)
    click.echo(by_hand.describe(commands))
    if print_only:
        return
    say(f"{stack}: {workers} worker(s) in the foreground, effects in {ledger}; Ctrl-C stops them")
    sys.exit(by_hand.run(commands, click.echo))


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def tool(name: str | None, args: tuple[str, ...]) -> None:
    """Run a broker's own tool against the kit's brokers: node name, cookie, bootstrap servers and
    credentials filled in. Without NAME: list the tools.

    \b
    queuekit tool rabbitmqctl list_queues name messages consumers
    queuekit tool kafka-consumer-groups --describe --group qk.signup
    queuekit tool kafka-topics --list
    queuekit tool kafka-console-consumer --topic qk.signup --from-beginning --max-messages 1
    """
    import subprocess

    from queuekit.brokers import tools

    if not name:
        for tool_name, what in tools.available().items():
            click.echo(f"{tool_name:30} {what}")
        return
    call = tools.invocation(settings(), name, args, say)
    say(call.shown)
    sys.exit(subprocess.call(call.argv, env=call.env))


@click.command()
@click.option("--stack", type=STACK_CHOICE, help="Also read this stack's dead letters from its broker; its ledger "
                                                 "is $QUEUEKIT_HOME/by-hand/STACK.sqlite unless --ledger says.")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(list(WORKLOADS)),
              help="Only this workload (repeatable). Default: all three.")
@click.option("--ledger", type=click.Path(path_type=Path), envvar="QUEUEKIT_LEDGER",
              help="The ledger to read. Default: $QUEUEKIT_LEDGER, else the stack's by-hand ledger.")
@click.option("--limit", default=20, show_default=True, help="Newest effects shown per service.")
def effects(stack: str | None, workloads: tuple[str, ...], ledger: Path | None, limit: int) -> None:
    """Show what took effect (from the ledger) and what was dead-lettered (the stack's dead letters).

    No sqlite3 needed: per service, how many effects, how many keys ran more than once, and the newest
    effects (key, worker, when); with --stack, each dead letter with its reason.
    """
    from queuekit.stacks import by_hand

    s = settings()
    if ledger is None and stack is None:
        raise click.UsageError("name a --stack (its by-hand ledger) or a --ledger / QUEUEKIT_LEDGER")
    path = (ledger or by_hand.default_ledger(s, stack)).resolve()  # type: ignore[arg-type]
    view = by_hand.effects_view(s, path, stack, workloads or tuple(WORKLOADS))
    click.echo(f"ledger {path}" + ("" if path.exists() else " (none yet: no worker has recorded an effect)"))
    for row in view.services:  # plain lines, not a table: nothing cut at the terminal's width, easy to grep
        click.echo(f"{row.workload}/{row.service}: {row.effects} effect(s), {row.duplicates} key(s) run more than once")
        for e in row.newest[-limit:]:
            when = time.strftime("%H:%M:%S", time.localtime(e.finished_at))
            click.echo(f"  {e.key}  by {e.worker}  at {when}")
    if stack is None:
        return
    click.echo(f"dead letters on {stack}'s broker: {len(view.dead_letters)}")
    for workload, letter in view.dead_letters:
        payload = letter.payload[:200].decode("utf-8", "replace")
        click.echo(f"  {workload}/{letter.service}  reason: {letter.reason[:200]}  payload: {payload}")
