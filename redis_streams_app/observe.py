"""The Redis Streams stack, live: per workload its groups' lag and pending entries, dead letters, consumers."""
from __future__ import annotations

from queuekit.core.config import Settings
from queuekit.core.redis_client import connect
from queuekit.stacks.observe import Observation
from workloads import WORKLOADS

from .admin import StreamAdmin, text
from .topology import Topology, prefix_of


def observe(settings: Settings) -> dict[str, Observation]:
    client = connect(settings)
    try:
        admin, topology = StreamAdmin(lambda: client), Topology(prefix_of(settings))
        out = {}
        for workload in WORKLOADS:
            routes = topology.routes(workload)
            entry = topology.entry_topic(workload)
            groups = admin.groups(entry)
            if not groups:
                continue  # not declared (never started, or reset)
            firsts = [groups[r.group] for r in routes if r.source == entry and r.group in groups]
            letters = admin.read_tail(r.dlq_topic for r in routes)
            out[workload] = Observation(
                backlog=sum(admin.lag(topology.subscriptions(workload)).values()),
                dead_letters=sum(client.xlen(r.dlq_topic) for r in routes),
                published=client.xinfo_stream(entry)["entries-added"],
                # entries-read counts deliveries to the group; minus pending: what its consumers acknowledged
                consumed=min((int(g.get("entries-read") or 0) - int(g["pending"]) for g in firsts), default=None),
                in_flight=sum(sum(admin.pending_per_consumer(r.source, r.group).values()) for r in routes),
                consumers=min((int(g["consumers"]) for g in firsts), default=None),
                reasons=[text(f.get(b"reason", b""))[:200] for _, f in letters],
            )
        return out
    finally:
        client.close()


def links(settings: Settings) -> dict[str, str]:
    return {}
