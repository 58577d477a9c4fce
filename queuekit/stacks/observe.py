"""A stack seen from outside while it runs: what ``queuekit dashboard`` and ``/metrics`` show.

Each Stack class declares its ``observer``: a module with
``observe(settings) -> {workload: Observation}``, read from the broker's own
view (management API, group offsets), and ``links(settings)`` (Flower, the
management UI). Counters are totals since the queue/topic exists; the
dashboard turns their deltas into rates. A stack declaring ``observer = None``
still appears, with a note saying so (the Stack protocol's reads are made for
a stack's own workers and can take seconds: not once a second).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from queuekit.stacks import declaration
from queuekit.stacks.registry import load_stack


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
    """The stack's declared live view (its own: ``celery_kafka`` reads Kafka, not ``celery_app.observe``)."""
    dotted = load_stack(stack).observer
    return None if dotted is None else declaration.target(dotted)
