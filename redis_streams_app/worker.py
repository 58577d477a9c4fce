"""One Redis Streams worker OS process: ``python -m redis_streams_app.worker <workload>...``.

For every service of the given workloads it runs ``options.concurrency`` consumer threads, each with
its own redis-py client (through ``core/redis_client.connect``: the primary found by Sentinel in the
cluster topology) and its own consumer name ``<worker>.<service>.<slot>`` in group ``<service>``.
A group's consumers share its entries (competing consumers), whatever their number.

SIGTERM/SIGINT: each thread finishes the entry in hand (and acknowledges it), then closes its
client; what it had read but not started stays pending, claimed by another consumer after
``min_idle_ms``. SIGKILL: nothing runs; the entries it held stay pending under its name until claimed.
A thread that crashes stops the whole process (exit 1); so does the death of the parent, for workers
the harness started only (``queuekit.core.log_worker``).
"""
from __future__ import annotations

import logging
import sys

from queuekit.core.config import Settings
from queuekit.core.log_worker import Member, run_members
from queuekit.core.logs import install_preview
from queuekit.core.redis_client import connect
from queuekit.core.worker_env import this_worker

from .claims import CLAIM_IDLE_MS, Claims
from .consumers import Service, consume
from .topology import Topology, prefix_of

log = logging.getLogger("redis_streams_app.worker")


def main(workloads: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    install_preview()  # no log line carries a whole entry
    me = this_worker("redis_streams")
    settings, options = Settings.from_env(), me.options
    topology = Topology(prefix_of(settings))
    min_idle_ms = options.record_lock_ms or CLAIM_IDLE_MS  # the lease (claims.py)

    def member(route, slot: int) -> Member[Service]:
        name = f"{me.name}.{route.service}.{slot}"

        def open_() -> Service:
            client = connect(settings)
            # XREADGROUP creates a consumer only when it hands it an entry (Redis 7.0, observed): register it now,
            # so the group lists it (the harness's readiness check) before the first entry arrives
            client.xgroup_createconsumer(route.source, route.group, name)
            return Service(route, client, name, me.ledger, me.name, options,
                           Claims(route, name, min_idle_ms, limit=options.max_retries + 1))

        def loop(svc: Service, stop) -> None:
            try:
                consume(svc, stop)
            finally:
                svc.client.close()

        # abandon: nothing to undo; what this consumer holds stays pending until another claims it
        return Member(name, open_, loop, lambda svc: svc.client.close())

    members = [member(route, i) for w in workloads for route in topology.routes(w) for i in range(options.concurrency)]
    return run_members(members, log)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
