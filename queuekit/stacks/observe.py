"""A stack seen from outside while it runs: what ``queuekit dashboard`` and ``/metrics`` show.

Each app package has an ``observe`` module (same name everywhere) with
``observe(settings) -> {workload: Observation}``, read from the broker's own
view (management API, group offsets), and ``links(settings)`` (Flower, the
management UI). Counters are totals since the queue/topic exists; the
dashboard turns their deltas into rates. A stack without an ``observe``
module still appears, with a note saying so (the Stack protocol's reads are
made for a stack's own workers and can take seconds: not once a second).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from queuekit.stacks.registry import STACKS


@dataclass(frozen=True)
class Observation:
    backlog: int | None  # ready + unacked (RabbitMQ) or consumer lag (Kafka), every queue/group of the workload
    dead_letters: int  # messages in the workload's dead-letter places
    published: int | None = None  # counter: messages into the workload's entry (per subscriber: the max)
    consumed: int | None = None  # counter: entry messages settled (acked / committed; per subscriber: the min)
    in_flight: int | None = None  # delivered, not yet acked (None: pull-based, nothing is "held")
    consumers: int | None = None  # live consumers on the entry queue / members of the entry group
    reasons: list[str] = field(default_factory=list)  # the latest dead letters' reasons, newest last


def observer(stack: str) -> ModuleType | None:
    package = _module_of(STACKS[stack]).rsplit(".", 1)[0]
    try:
        return importlib.import_module(f"{package}.observe")
    except ModuleNotFoundError:
        return None


def _module_of(registered: str | type) -> str:
    """``"celery_app.stack:CeleryStack"`` or a class registered directly (a test's) -> its module."""
    return registered.__module__ if isinstance(registered, type) else registered.split(":")[0]
