"""One RabbitMQ-streams worker OS process: ``python -m rabbitmq_stream_app.worker <workload>...``.

One asyncio loop; per service of the given workloads one reader
(``consumers.read``: its own connection; on 3.10 one subscription with the offset reference
``<service>@<worker>``, on >= 3.11 one single-active-consumer subscription per partition under
``<service>``: ``single_active.py``). Handlers run in a thread (``asyncio.to_thread``) so
the loop keeps serving heartbeats and the other readers. ``concurrency`` is
ignored: a reader handles its stream in order, one message at a time, and a
second reader in the same process would read every message again.

SIGTERM/SIGINT: each reader finishes the message in hand, stores its offset
and closes. SIGKILL: nothing runs; what was handled since the last store
(``STORE_INTERVAL_S``) is read again by the next reader with this reference.
A reader that crashes stops the whole process (exit 1); so does the death of
the parent, for workers the harness started only (``QUEUEKIT_DIE_WITH_PARENT``,
``queuekit.core.log_worker``): one started by hand outlives its shell.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys

from queuekit.core.config import Settings
from queuekit.core.log_worker import DIE_WITH_PARENT_ENV, orphaned, parent_to_watch
from queuekit.core.worker_env import this_worker

from .consumers import Service, read
from .partitions import partitioned
from .topology import entry_stream, routes

log = logging.getLogger("rabbitmq_stream_app.worker")
ORPHAN_CHECK_S = 1.0


async def run(workloads: list[str]) -> int:
    me = this_worker("rabbitmq_stream")
    settings = Settings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    shape = partitioned(settings)  # RabbitMQ >= 3.11: super streams + single active consumer (the driver's choice too)
    services = [Service(route, settings, me.ledger, me.name, me.options, entry_stream(w), shape)
                for w in workloads for route in routes(w)]
    readers = [asyncio.create_task(read(svc, stop), name=svc.reference) for svc in services]
    parent = parent_to_watch()  # the orphan watch: harness-started workers only
    while not stop.is_set():
        done = [t for t in readers if t.done()]
        if done:  # a reader that cannot go on takes the process down with it
            for task in done:
                if task.exception():
                    log.error("%s crashed", task.get_name(), exc_info=task.exception())
            stop.set()
            break
        if orphaned(parent):  # the harness died: stop instead of lingering
            log.warning("parent process %s exited: stopping (started by the harness, %s=%s)", parent,
                        DIE_WITH_PARENT_ENV, parent)
            stop.set()
        try:
            await asyncio.wait_for(stop.wait(), ORPHAN_CHECK_S)
        except asyncio.TimeoutError:
            pass
    results = await asyncio.gather(*readers, return_exceptions=True)
    return 1 if any(isinstance(r, BaseException) for r in results) else 0


def main(workloads: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(run(workloads))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
