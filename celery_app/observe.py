"""The Celery stack, live: its queues in the management API; Flower and the management UI as links."""
from __future__ import annotations

from queuekit.core.config import Settings
from queuekit.stacks.observe import Observation
from queuekit.stacks.rabbitmq_observe import observe_queues
from workloads import WORKLOADS

from . import topology


def observe(settings: Settings) -> dict[str, Observation]:
    return observe_queues(settings, topology.PREFIX, {
        w: ([topology.queue_name(s) for s in topology.entry_services(w)],
            [topology.queue_name(s) for s in spec.services],
            [topology.dlq_name(s) for s in spec.services])
        for w, spec in WORKLOADS.items()})


def links(settings: Settings) -> dict[str, str]:
    return {"Flower": settings.flower_url, "RabbitMQ management": settings.mgmt_url}
