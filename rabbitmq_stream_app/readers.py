"""Who reads what, as the driver checks it: every live worker's subscriptions (``single_active.plan``) and,
on RabbitMQ >= 3.11, whether the broker has settled one active reader per partition and service.

``consumers_ready`` must not return while the broker is still handing partitions from member to member:
a message published during a hand-over may be handled by the old member and, before its offset is
stored, again by the new one (a duplicate attempt a scenario would count). Settled means: every live
worker subscribed to every subscription of its plan, each (stream, service) with exactly one active
member, and a super stream's partitions spread over as many members as there are partitions or workers.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import topology
from .single_active import Subscription, plan

if TYPE_CHECKING:
    from .admin import StreamAdmin

Reader = tuple[str, str, str, bool]  # (stream, service, worker, active) as the stream management plugin lists them


def subscriptions(workload: str, worker: str, partitioned: bool, partitions: int) -> list[tuple[str, Subscription]]:
    """(service, subscription) of ``worker``'s readers of ``workload``."""
    entry = topology.entry_stream(workload)
    return [(r.service, s) for r in topology.routes(workload) for s in plan(r, worker, partitioned, entry, partitions)]


def settled(readers: Iterable[Reader], workers: list[str], workloads: Iterable[str], partitioned: bool,
            partitions: int, spread: bool = True) -> bool:
    readers = list(readers)
    subscribed = {(stream, service, worker) for stream, service, worker, _ in readers}
    active: dict[tuple[str, str], list[str]] = {}
    for stream, service, worker, is_active in readers:
        if is_active:
            active.setdefault((stream, service), []).append(worker)
    for workload in workloads:
        plans = {w: subscriptions(workload, w, partitioned, partitions) for w in workers}
        if not all((s.stream, service, w) in subscribed for w, subs in plans.items() for service, s in subs):
            return False
        if not partitioned or not workers:
            continue
        groups = {(s.stream, service) for subs in plans.values() for service, s in subs}
        if any(len(active.get(group, [])) != 1 for group in groups):
            return False  # a partition without its active member, or two during a hand-over
        for route in topology.routes(workload) if spread else ():
            if route.source == topology.entry_stream(workload):
                members = {active[(s.stream, route.service)][0] for s in plan(route, workers[0], True, route.source,
                                                                              partitions)}
                if len(members) < min(len(workers), partitions):
                    return False  # the broker has not finished spreading the partitions over the members
    return True


def lags(admin: StreamAdmin, workload: str, workers: list[str], partitioned: bool, partitions: int) -> dict[str, int]:
    """Tail minus stored offset per reference the live workers read with: 3.10, per reader ``<service>@<worker>``;
    >= 3.11, per service and partition ``<service>@<partition>`` (the group's reference, whoever is active)."""
    out: dict[str, int] = {}
    for worker in workers:
        for _, sub in subscriptions(workload, worker, partitioned, partitions):
            key = f"{sub.reference}@{sub.stream}" if partitioned else sub.reference
            if key not in out:
                stored = admin.stored_offset(sub.stream, sub.reference)
                out[key] = max(0, admin.tails.get(sub.stream, -1) - (-1 if stored is None else stored))
    return out
