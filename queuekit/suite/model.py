"""What a scenario is: data about a concept, a run function, and expectations per stack.

A scenario module declares:

* the concept from the class notes it demonstrates, and the question it asks;
* the workload and the ``StackOptions`` it runs with (per-stack overrides allowed);
* ``run(ctx) -> dict``: publish, inject the fault, measure — returns observations
  (numbers and short strings) read only from the ledger and the broker's view;
* ``expect``: per stack, what the observations must be. An expectation is data —
  a value (equality) or a predicate such as ``AtLeast(1)`` — never an
  ``if stack == …`` in an assertion. "Lost" or "violated" can be the correct,
  expected observation; it is a finding about the stack, not a failure of the kit.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.stacks.base import Stack

STACK_NAMES = ("celery", "dramatiq", "kafka")


class Predicate:
    def matches(self, value: Any) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class AtLeast(Predicate):
    n: float

    def matches(self, value: Any) -> bool:
        return value is not None and value >= self.n

    def __str__(self) -> str:
        return f">= {self.n:g}"


@dataclass(frozen=True)
class AtMost(Predicate):
    n: float

    def matches(self, value: Any) -> bool:
        return value is not None and value <= self.n

    def __str__(self) -> str:
        return f"<= {self.n:g}"


@dataclass(frozen=True)
class Between(Predicate):
    low: float
    high: float

    def matches(self, value: Any) -> bool:
        return value is not None and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Anything(Predicate):
    """Recorded, reported, not asserted: the number is the finding (e.g. rebalance duplicates)."""

    def matches(self, value: Any) -> bool:
        return True

    def __str__(self) -> str:
        return "any (recorded)"


def describe(expected: Any) -> str:
    return str(expected) if isinstance(expected, Predicate) else f"== {expected!r}"


def matches(expected: Any, observed: Any) -> bool:
    return expected.matches(observed) if isinstance(expected, Predicate) else observed == expected


def same(**expected: Any) -> dict[str, dict[str, Any]]:
    """The same expectation on every stack."""
    return {stack: dict(expected) for stack in STACK_NAMES}


def each(base: Mapping[str, Any] | None = None, **per_stack: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A shared base expectation plus per-stack differences: each({"lost": 0}, kafka={"violations": 0}).

    The per-stack keys come first: they are the cell's distinguishing numbers in the report."""
    return {stack: {**per_stack.get(stack, {}), **{k: v for k, v in (base or {}).items()
                                                    if k not in per_stack.get(stack, {})}}
            for stack in STACK_NAMES}


@dataclass
class Context:
    """What ``run`` gets: the started stack, the ledger, the options and the settings."""

    stack: Stack
    ledger: Ledger
    options: StackOptions
    workload: str
    scenario: "Scenario"

    @property
    def settings(self):
        return self.stack.settings


@dataclass(frozen=True)
class Scenario:
    name: str  # "ordering-per-key": the test id is scenario-<name>-<stack>
    concept: str  # the class-notes concept it demonstrates
    question: str  # what it asks, in one sentence
    workload: str
    run: Callable[[Context], dict[str, Any]]
    expect: dict[str, dict[str, Any]]  # stack -> observation name -> value or Predicate
    options: StackOptions = StackOptions()
    stack_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # stack -> StackOptions overrides
    starts_itself: bool = False  # run() starts the stack (e.g. to publish before workers exist)
    needs_kit_brokers: bool = False  # restarts the broker: only with brokers the kit manages

    def options_for(self, stack: str) -> StackOptions:
        return replace(self.options, **self.stack_options.get(stack, {}))

    def check(self, stack: str, observed: Mapping[str, Any]) -> list[str]:
        """The mismatches between what was observed and what was expected, as sentences."""
        return [
            f"{key}: observed {observed.get(key)!r}, expected {describe(want)}"
            for key, want in self.expect[stack].items()
            if not matches(want, observed.get(key))
        ]
