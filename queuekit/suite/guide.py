"""'When to use which', built from observed cells, in the spirit of the class notes.

Each claim names a need, the scenario and the observation that is its
evidence; the stacks that did best are computed from what was observed in
this run, overall and within each broker family, not written down in advance.
Where the run shows no difference, it says so. Why the stacks differ is not
written here: the report links each claim to the annotated lines that decide
it (``queuekit.suite.concepts``, the code view).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Claim:
    need: str  # the need a team has, in plain words
    scenario: str
    metric: str
    better: str  # "lower" | "higher" | "true" | "positive" (any push-back at all counts, not how much)

    def rank(self, values: dict[str, Any]) -> list[str]:
        usable = {s: v for s, v in values.items() if v is not None and not isinstance(v, (list, dict, str))}
        if not usable:
            return []
        if self.better == "true":
            return [s for s, v in usable.items() if v is True]
        if self.better == "positive":
            return [s for s, v in usable.items() if v > 0]
        pick = min if self.better == "lower" else max
        best = pick(usable.values())
        return [s for s, v in usable.items() if v == best]


CLAIMS = [
    Claim("Share tasks among workers, each task done by one", "work-distribution", "keys_seen_by_several_workers",
          "lower"),
    Claim("Many services need the same events", "fan-out", "broker_messages_per_event", "lower"),
    Claim("Per-user order with several consumers", "ordering-per-key", "order_violations", "lower"),
    Claim("Failing messages set aside, with their reason, without blocking others", "poison-to-dlq",
          "dead_is_the_poison", "true"),
    Claim("A task must survive a worker crash", "crash-mid-task", "lost", "lower"),
    Claim("A message that crashes its worker must not crash every worker", "poison-crash-loop", "dead_letters",
          "positive"),
    Claim("Several tasks fetched ahead must survive a worker crash", "crash-mid-task-prefetch", "lost", "lower"),
    Claim("Beware of acking on receipt", "crash-mid-task-early-ack", "lost", "lower"),
    Claim("Duplicates are normal (at-least-once): make them harmless", "duplicate-delivery", "effects_with_guard",
          "lower"),
    Claim("Replay history for a new consumer or a bug fix", "replay", "replayed", "higher"),
    Claim("Slow the producer down when consumers fall behind", "back-pressure", "publisher_refused", "positive"),
    Claim("Each input's output exactly once, across a crash", "exactly-once", "outputs_delivered_per_input", "lower"),
    Claim("More workers than partitions, all busy (queue semantics without a second broker)",
          "more-consumers-than-partitions", "workers_with_work", "higher"),
    Claim("A task longer than the broker's lease runs once", "lease-expiry", "long_task_attempts", "lower"),
]


class _Observed(Protocol):
    @property
    def observed(self) -> dict[str, Any]: ...


class Compared(Protocol):
    """What the guide reads: a ``Comparison``, or results.json seen through ``report.html``."""

    @property
    def stacks(self) -> list[str]: ...
    def cell(self, scenario: str, stack: str) -> _Observed | None: ...


def guide(comparison: Compared, families: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The claims this run has evidence for: the observed values, the best stacks, and the best in each family."""
    rows = []
    for claim in CLAIMS:
        values = {stack: (cell.observed.get(claim.metric) if (cell := comparison.cell(claim.scenario, stack)) else None)
                  for stack in comparison.stacks}
        if all(v is None for v in values.values()):
            continue
        best = claim.rank(values)
        verdict = ("no difference observed" if len(best) == len(comparison.stacks)
                   else "best observed: " + ", ".join(best) if best else "no usable observation")
        by_family = {}
        for family in dict.fromkeys((families or {}).values()):
            own = {s: v for s, v in values.items() if (families or {}).get(s) == family and v is not None}
            by_family[family] = claim.rank(own) if own else []
        rows.append({"need": claim.need, "scenario": claim.scenario, "metric": claim.metric,
                     "values": values, "best": best, "verdict": verdict, "by_family": by_family})
    return rows
