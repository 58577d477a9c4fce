"""One Kafka worker OS process: ``python -m kafka_app.worker <workload>...``.

For every service of the given workloads it runs ``options.concurrency``
consumer threads (each its own ``Consumer``, so each a member of group
``qk.<service>``) and one retry consumer (a member of ``qk.<service>.retry``).
Parallelism per service is bounded by the partition count: members beyond it
sit idle. Options come from ``QUEUEKIT_STACK_OPTIONS``, the ledger from
``QUEUEKIT_LEDGER``, the worker's name from ``QUEUEKIT_WORKER_NAME``.

SIGTERM/SIGINT: each thread finishes the record in hand, then ``close()``
commits the stored offsets and leaves the group. SIGKILL: nothing runs; what
was handled but not yet committed is re-delivered to the group's other members
once this one's session times out. A thread that crashes stops the whole
process (exit 1) instead of leaving a half-alive member behind; so does the
death of the parent, for workers the harness started only (the threads, the
signals and that orphan watch: ``queuekit.core.log_worker``). A worker started
by hand keeps running when the shell or supervisor that started it exits.

``options.transactional``: each consumer thread owns a transactional
producer, id ``qk.<service>.<worker name>.<slot>`` (stable per worker index);
``options.long_task = "pause-resume"``: each consumer thread hands its
records to a worker thread of its own and keeps polling (see consumers.py).
"""
from __future__ import annotations

import logging
import sys

from queuekit.core.config import Settings
from queuekit.core.log_worker import Member, run_members
from queuekit.core.logs import install_preview
from queuekit.core.worker_env import this_worker

from . import clients
from .consumers import Service, consume, consume_retries
from .long_tasks import MODES, PausedWork
from .offsets import StoredOffsets, Transactions
from .topology import routes

log = logging.getLogger("kafka_app.worker")


def main(workloads: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    install_preview()  # no log line carries a whole record value
    me = this_worker("kafka")
    settings, options, ledger, worker = Settings.from_env(), me.options, me.ledger, me.name
    transactional, long_task = options.transactional, options.long_task
    if long_task not in MODES:
        raise ValueError(f"long_task={long_task!r}: choose from {', '.join(MODES)}")

    def service(route, group: str, client_id: str, slot: int | str) -> Service:
        consumer = clients.consumer(settings, group, client_id, options)
        offsets: StoredOffsets | Transactions
        if transactional:
            producer = clients.transactional_producer(settings, client_id, route.transactional_id(worker, slot),
                                                      options)
            # Fences any earlier producer with this id (this worker index before a restart) and
            # aborts the transaction it left open; before subscribing, so "ready" means ready.
            producer.init_transactions(clients.INIT_TRANSACTIONS_TIMEOUT_S)
            offsets = Transactions(consumer, producer)
        else:
            producer, offsets = clients.producer(settings, client_id), StoredOffsets(consumer)
        paused = PausedWork(consumer, client_id) if long_task == "pause-resume" else None
        return Service(route, consumer, producer, ledger, worker, options, offsets, paused)

    def member(loop, route, group: str, client_id: str, slot: int | str) -> Member[Service]:
        # abandon: close() commits only what was stored, so the record in hand is delivered again
        return Member(client_id, lambda: service(route, group, client_id, slot), loop, lambda svc: svc.consumer.close())

    members = []
    for route in (r for w in workloads for r in routes(w)):
        members += [member(consume, route, route.group, f"{worker}.{route.service}.{i}", i)
                    for i in range(options.concurrency)]
        members.append(member(consume_retries, route, route.retry_group, f"{worker}.{route.service}.retry", "retry"))
    return run_members(members, log)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
