"""Broker commands: up, down, status, provision, ping."""
from __future__ import annotations

import json
import os
import sys

import click
from rich.table import Table

from queuekit import brokers
from queuekit.core.config import settings

from .common import RABBITMQ_VERSION, TOPOLOGY, console, kit_settings, print_status, say

COMPONENTS = click.Choice(brokers.NAMES)


@click.command()
@click.argument("components", nargs=-1, type=COMPONENTS)
@TOPOLOGY
@RABBITMQ_VERSION
def up(components: tuple[str, ...], topology: str | None) -> None:
    """Provision (first run) and start the brokers; reuse whatever already runs.

    COMPONENTS: any of rabbitmq, kafka, redis, flower, flower-redis (default: all; no Flower in the cluster
    topology).
    """
    s = kit_settings(topology)
    started = brokers.up(s, components or None, say)
    say(f"started: {', '.join(started)}" if started else "everything was already running")
    print_status(brokers.statuses(s, components or None))


@click.command()
@click.argument("components", nargs=-1, type=COMPONENTS)
@TOPOLOGY
@RABBITMQ_VERSION
@click.option("--purge", is_flag=True,
              help="On an external broker: delete what this install created there, by name (its vhost, topics and "
                   "groups as recorded in $QUEUEKIT_HOME/manifest.json, then emptied; its Redis keys as recorded "
                   "in that Redis under the install's prefix).")
def down(components: tuple[str, ...], topology: str | None, purge: bool) -> None:
    """Stop what the kit started (SIGTERM, then SIGKILL). External brokers are never stopped.

    In the cluster topology this also heals any fault and removes the namespaces, links and
    nftables table the kit made. With --purge, what this install created on an external broker
    is deleted too (nothing else: a foreign object is never in the manifest).
    """
    s = kit_settings(topology)
    stopped = brokers.down(s, components or None, say)
    say(f"stopped: {', '.join(stopped)}" if stopped else "nothing of the kit's was running")
    if purge:
        from queuekit.stacks.manifest import purge_all

        left = purge_all(s, say)
        if left:
            raise click.ClickException(f"{len(left)} recorded object(s) could not be deleted (a group with live "
                                       f"members, or another endpoint's): {', '.join(e['name'] for e in left)}")
        say("the manifest of this install's objects on external brokers is empty")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
@TOPOLOGY
@RABBITMQ_VERSION
def status(as_json: bool, topology: str | None) -> None:
    """Show each component: URL, who manages it, pid, version, health. Exit 1 if any is unhealthy."""
    rows = brokers.statuses(kit_settings(topology))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print_status(rows)
    sys.exit(0 if all(r.healthy for r in rows) else 1)


@click.command()
@RABBITMQ_VERSION
def provision() -> None:
    """Install what the brokers need (apt rabbitmq-server and redis-server, Kafka jars from Maven Central),
    start nothing.

    With --rabbitmq 4 (or 4.0, 4.3) it builds, once, the Debian root that version runs from, with
    mmdebstrap, into $QUEUEKIT_HOME/cache/rabbitmq-<version>-root (about 240 MB).
    """
    from queuekit.brokers.kafka import resolve_jars
    from queuekit.brokers.rabbitmq import RabbitMQ, install_rabbitmq
    from queuekit.brokers.rabbitmq_root import provision_root, root_info
    from queuekit.brokers.redis import install_redis

    s = settings()
    rabbit = RabbitMQ(s)
    if not s.external_amqp_url and rabbit.root is None:
        install_rabbitmq(say)
    elif not s.external_amqp_url:
        root = provision_root(s, rabbit.version, say)
        info = root_info(s, rabbit.version) or {}
        say(f"RabbitMQ {info.get('rabbitmq_server')} (Erlang {info.get('erlang')}, Debian {info.get('suite')}, "
            f"built in {info.get('seconds')} s): {root}")
    if not s.external_kafka_bootstrap:
        libs, version = resolve_jars(s, say)
        say(f"Kafka {version}: {libs}")
    if not s.external_redis_url:
        install_redis(say)
    say("provisioned")


@click.command()
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON to stdout.")
def credentials(as_json: bool) -> None:
    """Show the RabbitMQ, Flower and Redis credentials of this install and where they come from.

    Generated once per install (random passwords) into $QUEUEKIT_HOME/credentials.json, mode 0600;
    QUEUEKIT_RABBIT_USER/_PASSWORD, QUEUEKIT_FLOWER_USER/_PASSWORD and QUEUEKIT_REDIS_USER/_PASSWORD override them.
    """
    s = settings()
    rows = [("rabbitmq", s.rabbit_user, s.rabbit_password, "QUEUEKIT_RABBIT_PASSWORD"),
            ("flower", s.flower_user, s.flower_password, "QUEUEKIT_FLOWER_PASSWORD"),
            ("redis", s.redis_user, s.redis_password, "QUEUEKIT_REDIS_PASSWORD")]
    source = {name: "environment" if os.environ.get(var) else str(s.credentials_file) for name, _, _, var in rows}
    if as_json:
        click.echo(json.dumps({n: {"user": u, "password": p, "from": source[n]} for n, u, p, _ in rows}, indent=2))
        return
    for name, user, password, _ in rows:  # plain lines on stdout: a table would cut the passwords
        click.echo(f"{name:<9} user {user}  password {password}  (from {source[name]})")
