"""One Celery worker OS process: ``python -m celery_app.worker <workload>...``.

Runs ``app.worker_main`` in THIS process with the thread pool inside it, so
the pid the stack holds is the one that holds the messages and SIGKILL takes
every slot with it (prefork would leave pool children). Options arrive
through the environment (``this_worker``), the node name from
QUEUEKIT_WORKER_NAME (``celery-0@host`` in Flower), and ``-Q`` is limited to
the given workloads' queues.
"""
from __future__ import annotations

import sys

from celery import bootsteps

from queuekit.core.options import StackOptions
from queuekit.core.worker_env import this_worker

from . import topology


def argv(workloads: list[str], options: StackOptions | None = None, name: str | None = None) -> list[str]:
    """``celery worker`` arguments (after ``-A celery_app.app``); ``celery_app.by_hand`` passes options and name."""
    if options is None or name is None:
        me = this_worker("celery")
        options, name = options or me.options, name or me.name
    return [
        "worker",
        f"--hostname={name}@%h",
        # threads even for one slot: the solo pool runs the task inside the event loop, so the loop's
        # deferred ack of early_ack only goes out after the task (a SIGKILL then redelivers, not loses)
        "--pool=threads",
        f"--concurrency={options.concurrency}",
        f"--queues={','.join(topology.queue_name(s) for s in topology.services(workloads))}",
        "--without-gossip",  # no worker-to-worker chatter; Flower uses events and heartbeats
        "--without-mingle",  # no startup sync round (faster start, nothing to sync: no revokes)
        # INFO logs two lines per task; options.loglevel="WARNING" (the bench) keeps a plain worker's default
        f"--loglevel={options.loglevel}",
    ]


class PromptWarmShutdown(bootsteps.StartStopStep):
    """A SIGTERM only sets a flag, which Celery's event loop reads when it wakes, and it sleeps up to 1 s
    when no timer is due: every warm shutdown (each stack stop) waited that second. A no-op timer every
    ``SHUTDOWN_CHECK_S`` wakes it sooner; the loop polls the same sockets as before."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c):
        if c.hub is not None:  # RabbitMQ's event loop; on Kafka, kafka_transport keeps the loop's turns short
            c.hub.call_repeatedly(SHUTDOWN_CHECK_S, _nothing)


def _nothing() -> None:
    pass


SHUTDOWN_CHECK_S = 0.2


def main() -> None:
    workloads = sys.argv[1:]
    if not workloads:
        sys.exit("usage: python -m celery_app.worker <workload>...")
    from celery.signals import after_setup_logger

    from queuekit.core.logs import install_preview

    from . import tasks  # noqa: F401  registers the tasks and the consumer step before the worker builds
    from .app import app  # imported here so the options in the environment configure it

    # Celery quotes bodies in some log lines (decode errors): a preview, never a whole body
    after_setup_logger.connect(lambda logger, **_: install_preview(logger), weak=False)

    app.steps["consumer"].add(PromptWarmShutdown)
    app.worker_main(argv(workloads))


if __name__ == "__main__":
    main()
