"""The live view of a RabbitMQ stack, from one management-API read of its queues (Celery's and Dramatiq's share it)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from queuekit.stacks.rabbitmq import Management


def observe_queues(settings: Settings, prefix: str, workloads: dict[str, tuple[Sequence[str], Sequence[str], Sequence[str]]],
                   ) -> dict[str, Observation]:
    """``workloads``: name -> (entry queues, every work queue, dead-letter queues)."""
    mgmt = Management(settings)
    try:
        rows = mgmt.queue_details(prefix)
    finally:
        mgmt.close()

    def total(names: Sequence[str], read: Callable[[dict], int]) -> int:
        return sum(read(rows[n]) for n in names if n in rows)

    def stat(name: str, key: str) -> int:
        return int(((rows.get(name) or {}).get("message_stats") or {}).get(key, 0) or 0)

    out = {}
    for workload, (entry, work, dead) in workloads.items():
        present = [q for q in entry if q in rows]
        if not present:
            continue  # not declared (never started, or reset)
        out[workload] = Observation(
            backlog=total(work, lambda q: (q.get("messages_ready") or 0) + (q.get("messages_unacknowledged") or 0)),
            dead_letters=total(dead, lambda q: q.get("messages") or 0),
            published=max((stat(q, "publish") for q in present), default=0),
            consumed=min((stat(q, "ack") for q in present), default=0),
            in_flight=total(work, lambda q: q.get("messages_unacknowledged") or 0),
            consumers=min((rows[q].get("consumers") or 0 for q in present), default=0),
        )
    return out
