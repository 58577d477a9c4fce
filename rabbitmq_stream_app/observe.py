"""The RabbitMQ streams stack, live: its streams as the management API lists them (a stream is a queue there).

``published`` is the entry stream's message count (on 3.10 it includes the
offset-tracking entries readers store, so it runs slightly ahead of the
messages sent); dead letters are the ``.dlq`` streams' counts. Backlog is not
shown: a reader's lag is its stored offset against the tail, which only the
stream protocol tells (``RabbitMQStreamStack.backlog``, per live worker).
"""
from __future__ import annotations

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from queuekit.stacks.rabbitmq import Management
from workloads import WORKLOADS

from . import topology


def observe(settings: Settings) -> dict[str, Observation]:
    mgmt = Management(settings)
    try:
        rows = mgmt.queue_details(topology.PREFIX)
    finally:
        mgmt.close()
    out = {}
    for workload in WORKLOADS:
        entry = topology.entry_stream(workload)
        if entry not in rows:
            continue  # not declared (never started, or reset)
        out[workload] = Observation(
            backlog=None,
            dead_letters=sum(rows.get(r.dlq, {}).get("messages") or 0 for r in topology.routes(workload)),
            published=rows[entry].get("messages") or 0,
            consumers=rows[entry].get("consumers") or 0,
        )
    return out


def links(settings: Settings) -> dict[str, str]:
    return {"RabbitMQ management": settings.mgmt_url}
