"""The delivery concepts the app packages annotate, and the scenarios whose cells each one explains.

An app package marks the line that decides a concept with a comment,
``# [semantics:<concept>] why`` (see docs/code-view.md); the code view puts
those lines beside the matrix cells of ``scenarios`` below, and a cell links
back to the lines on each stack. ``required`` says, from a stack's declared
capabilities alone, whether its package must carry the mark: a stack gains or
loses a concept by what it declares, never by its name (the test
``tests/unit/test_code_view.py`` fails when a mark points at nothing or a
required one is missing).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from queuekit.stacks.capabilities import Capabilities


def _every(caps: Capabilities) -> bool:
    return True


@dataclass(frozen=True)
class Concept:
    title: str
    scenarios: tuple[str, ...]  # the cells this concept's lines explain
    required: Callable[[Capabilities], bool] = _every


CONCEPTS: dict[str, Concept] = {
    "ack-timing": Concept("ack timing: settled before or after the handler",
                          ("crash-mid-task", "crash-mid-task-early-ack", "crash-mid-task-prefetch", "lease-expiry")),
    "prefetch": Concept("prefetch: how much a worker holds unsettled",
                        ("crash-mid-task-prefetch", "back-pressure", "work-distribution",
                         "more-consumers-than-partitions")),
    # A log keeps what was consumed: the consumer's position (an offset, a share group's acknowledgements) is
    # stored apart from the message, and where it is stored decides what a crash re-reads and what replay starts.
    "offset-commit": Concept("offset commit / store: where the position is kept",
                             ("crash-mid-task", "replay", "exactly-once", "rebalance"),
                             lambda caps: caps.replayable),
    "retries": Concept("retries and backoff", ("retry-backoff", "poison-crash-loop")),
    "dead-letter": Concept("dead-lettering: where a failed message ends, with its reason",
                           ("poison-to-dlq", "poison-crash-loop", "framework-drops")),
    "idempotency": Concept("idempotency guard: a repeat has no second effect",
                           ("duplicate-delivery", "exactly-once", "crash-mid-task")),
    # Kafka spreads a topic over partitions by the record key: the key decides per-key order and parallelism.
    "partition-key": Concept("partition key: which records share an ordered lane",
                             ("ordering-per-key", "more-consumers-than-partitions"),
                             lambda caps: caps.broker == "kafka"),
}
# The two other marks a package carries: the code a workload's message runs through, and what it declares.
SECTIONS = ("handler", "topology")


def concepts_of(scenario: str) -> list[str]:
    """The concepts whose annotated lines explain this scenario's cells."""
    return [name for name, c in CONCEPTS.items() if scenario in c.scenarios]
