"""Queue names and arguments: what Dramatiq declares on RabbitMQ for each workload.

Dramatiq declares its own queues (on first send and when a worker starts
consuming): per actor queue ``Q`` it declares ``Q`` (dead-lettering to
``Q.XQ`` through the default exchange), ``Q.DQ`` (the delay queue retries go
through; same arguments as ``Q``) and ``Q.XQ`` (the dead letters, 7-day TTL).

One queue per service: ``dramatiq.<service>``, e.g. ``dramatiq.video.transcode``
(Dramatiq's rule: ``[a-zA-Z_][a-zA-Z0-9._-]*``; a name ending ``.DQ``/``.XQ`` would
be taken for one of the two helper queues). No exchange: Dramatiq publishes
to the default exchange with the queue name as routing key.
"""
from __future__ import annotations

from collections.abc import Iterable

from queuekit.core.options import StackOptions
from workloads import WORKLOADS

PREFIX = "dramatiq."  # reset() deletes every queue with this prefix


def queue_name(service: str) -> str:
    return PREFIX + service


def entry_services(workload: str) -> tuple[str, ...]:
    """The services a publish of ``workload`` sends to: the pipeline's first step, else every service
    (fan-out has no broker support here: the producer sends one message per subscriber)."""
    spec = WORKLOADS[workload]
    return spec.services[:1] if spec.shape == "pipeline" else spec.services


def consumed_queues(workload: str) -> list[str]:
    """What a worker for ``workload`` consumes: each service queue and its delay queue."""
    return [name for s in WORKLOADS[workload].services for name in (queue_name(s), queue_name(s) + ".DQ")]


def work_queues(workload: str) -> list[str]:
    """The queues whose ready + unacked count as backlog (not the dead letters)."""
    return consumed_queues(workload)


def dead_letter_queues(workload: str) -> list[str]:
    return [queue_name(s) + ".XQ" for s in WORKLOADS[workload].services]


def kit_queues(workloads: Iterable[str] = WORKLOADS) -> tuple[list[str], list[str]]:
    """Every queue the kit may have declared for ``workloads``, BY NAME (work queues with their .DQ; the .XQ dead
    letters): what ``reset`` deletes, never a foreign ``dramatiq.*`` queue. No exchanges (default only)."""
    work = [q for w in workloads for q in consumed_queues(w)]
    dead = [q for w in workloads for q in dead_letter_queues(w)]
    return list(dict.fromkeys(work)), list(dict.fromkeys(dead))


def extra_queue_arguments(options: StackOptions) -> dict[str, dict]:
    """Arguments added to Dramatiq's own declaration of the entry queues (not their .DQ/.XQ).

    ``queue_max_length``: RabbitMQ refuses (nacks) a publish into a full entry
    queue instead of dropping its head, so the producer can count it.
    """
    if options.queue_max_length is None:
        return {}
    bounded = {"x-max-length": options.queue_max_length, "x-overflow": "reject-publish"}
    return {queue_name(s): bounded for workload in WORKLOADS for s in entry_services(workload)}
