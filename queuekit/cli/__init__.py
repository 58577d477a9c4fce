"""The ``queuekit`` command line: the composition root. Each command lives in a thin module by group:
``brokers`` (up, down, status, provision, ping, credentials), ``run`` (run, compare, scenarios), ``bench`` (bench,
monitor), ``by_hand`` (worker, tool), ``views`` (dashboard, report), ``faults`` (faults: the cluster topology),
``chaos`` (chaos)."""
from __future__ import annotations

import click

from queuekit.core.errors import KitError

from . import bench, brokers, by_hand, chaos, faults, run, views


class KitGroup(click.Group):
    """Turns a KitError anywhere below into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KitError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=KitGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Compare task queues and event streams on the same workloads, on real brokers.

    Every stack in the registry is a column (`queuekit compare --help` names
    them). The kit starts its own RabbitMQ (with the management plugin), Kafka
    (KRaft, one node) and Flower as child processes bound to 127.0.0.1, with
    state under $QUEUEKIT_HOME (default ~/.cache/queuekit). Point it at your
    own brokers with QUEUEKIT_AMQP_URL / QUEUEKIT_KAFKA_BOOTSTRAP instead.
    """


for command in (brokers.up, brokers.down, brokers.status, brokers.provision, brokers.ping,
                run.run, run.compare, run.scenarios, bench.bench, bench.monitor, by_hand.worker,
                by_hand.tool, views.dashboard, views.report, views.docs, faults.faults, chaos.chaos, brokers.credentials):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="queuekit")
