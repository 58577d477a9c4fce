"""The Dramatiq stack, live: its queues (with ``.DQ`` and ``.XQ``) in the management API."""
from __future__ import annotations

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from queuekit.stacks.rabbitmq_observe import observe_queues
from workloads import WORKLOADS

from . import topology


def observe(settings: Settings) -> dict[str, Observation]:
    return observe_queues(settings, topology.PREFIX, {
        w: ([topology.queue_name(s) for s in topology.entry_services(w)],
            topology.work_queues(w), topology.dead_letter_queues(w))
        for w in WORKLOADS})


def links(settings: Settings) -> dict[str, str]:
    return {"RabbitMQ management": settings.mgmt_url}
