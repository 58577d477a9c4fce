"""One share-group worker OS process: ``python -m kafka_share_app.worker <workload>...``.

For every service of the given workloads it runs ``options.concurrency``
consumer threads, each its own ``ShareConsumer`` (so each a member of share
group ``qks.<service>``). Members beyond the partition count still get
records: the broker assigns a partition to several members of a share group.
Options come from ``QUEUEKIT_STACK_OPTIONS``, the ledger from
``QUEUEKIT_LEDGER``, the worker's name from ``QUEUEKIT_WORKER_NAME``.

SIGTERM/SIGINT: each thread acknowledges the record in hand, then ``close()``
sends the acknowledgements, releases what it acquired and leaves the group.
SIGKILL: nothing runs; the records it held come back when their lock expires
or its session times out (the group's ``share.session.timeout.ms``). A thread
that crashes stops the whole process (exit 1); so does the parent's death, for
workers the harness started only (``queuekit.core.log_worker``).
"""
from __future__ import annotations

import logging
import sys

from queuekit.core.config import Settings
from queuekit.core.log_worker import Member, run_members
from queuekit.core.worker_env import this_worker

from . import clients
from .consumers import Service, consume
from .topology import routes

log = logging.getLogger("kafka_share_app.worker")


def main(workloads: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    me = this_worker("kafka_share")
    settings, options, ledger, worker = Settings.from_env(), me.options, me.ledger, me.name

    def member(route, client_id: str) -> Member[Service]:
        def open_clients() -> Service:
            return Service(route, clients.share_consumer(settings, route.group, client_id, options),
                           clients.producer(settings, client_id), ledger, worker, options)
        # abandon: close() releases the unacknowledged record in hand: it is delivered again
        return Member(client_id, open_clients, consume, lambda svc: svc.consumer.close())

    return run_members([member(route, f"{worker}.{route.service}.{i}")
                        for route in (r for w in workloads for r in routes(w)) for i in range(options.concurrency)], log)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
