"""The RQ stack, live: its queues and registries in RQ's database, read raw (no cleanup side effects)."""
from __future__ import annotations

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from workloads import WORKLOADS

from . import dead_letters, topology


def observe(settings: Settings) -> dict[str, Observation]:
    client = topology.connection(settings)
    try:
        out = {}
        for workload, spec in WORKLOADS.items():
            queues = [topology.queue_name(s) for s in spec.services]
            waiting = sum(client.llen(f"rq:queue:{q}") + client.zcard(f"rq:scheduled:{q}") for q in queues)
            started = sum(client.zcard(f"rq:wip:{q}") for q in queues)
            dead = [d for s in spec.services for d in dead_letters.read(client, s, f"rq:failed:{topology.queue_name(s)}")]
            entry = topology.queue_name(topology.entry_services(workload)[0])
            consumers = sum(1 for w in client.smembers(f"rq:workers:{entry}"))
            out[workload] = Observation(backlog=waiting + started, dead_letters=len(dead), in_flight=started,
                                        consumers=consumers, reasons=[d.reason for d in dead[-3:]])
        return out
    finally:
        client.close()


def links(settings: Settings) -> dict[str, str]:
    return {}
