"""What a scenario is: data about a concept, a run function, and expectations per stack.

A scenario module declares:

* the concept from the class notes it demonstrates, and the question it asks;
* the workload and the ``StackOptions`` it runs with (overrides for stacks with
  a capability, ``options_when``);
* ``run(ctx) -> dict``: publish, inject the fault, measure — returns observations
  (numbers and short strings) read only from the ledger and the broker's view;
* ``expect``: rules written against the stacks' declared capabilities —
  ``always(lost=0)``, ``by_capability("replayable", yes={"replayed": N}, no={"replayed": 0})``
  — and, only for a finding that belongs to one framework, ``for_stack(name, why, …)``.
  A new stack joins the matrix through its capabilities, without editing a scenario.
  An expectation is a value (equality) or a predicate such as ``AtLeast(1)``;
* ``kinds``: what each observation means for a design review (``Kind``: loss,
  duplicate, order, refused, retry, info; undeclared = info). The report colours
  a cell from these declarations, never from the observation's name.
  "Lost" or "violated" can be the correct, expected observation; it is a
  finding about the stack, not a failure of the kit.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.stacks.base import Stack
from queuekit.stacks.capabilities import Capabilities

# What an observation means (queuekit/report/meaning.py colours a cell from it): a count of messages
# lost / effects applied twice / per-key order violations / publishes the broker refused (back-pressure,
# nothing lost) / runs of one piece of work (more than 1 = the same work started again); or info.
Kind = Literal["loss", "duplicate", "order", "refused", "retry", "info"]
KINDS: tuple[str, ...] = get_args(Kind)


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


class Rule:
    """One line of a scenario's expectations: which stacks it applies to, and what they must observe."""

    specific = True  # distinguishing numbers come first in a cell; shared ones (``always``) after

    def applies(self, name: str, caps: Capabilities) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Always(Rule):
    expected: Mapping[str, Any]
    specific = False

    def applies(self, name: str, caps: Capabilities) -> dict[str, Any]:
        return dict(self.expected)


@dataclass(frozen=True)
class ByCapability(Rule):
    capability: str
    cases: Mapping[Any, Mapping[str, Any]]  # capability value -> expectations

    def applies(self, name: str, caps: Capabilities) -> dict[str, Any]:
        return dict(self.cases.get(getattr(caps, self.capability), {}))


@dataclass(frozen=True)
class ForStack(Rule):
    """A finding that belongs to one framework, not to a capability: ``why`` says which."""

    stack: str
    expected: Mapping[str, Any]
    why: str

    def applies(self, name: str, caps: Capabilities) -> dict[str, Any]:
        return dict(self.expected) if name == self.stack else {}


def always(**expected: Any) -> Always:
    """The same expectation on every stack."""
    return Always(expected)


def by_capability(capability: str, *, yes: Mapping[str, Any] | None = None, no: Mapping[str, Any] | None = None,
                  **cases: Mapping[str, Any]) -> ByCapability:
    """Expectations that follow a declared capability: ``by_capability("replayable", yes={...}, no={...})``;
    for a non-boolean capability name its values: ``by_capability("dead_letter", native={...}, adapter={...})``."""
    if capability not in Capabilities.names():
        raise ValueError(f"unknown capability {capability!r}; known: {', '.join(Capabilities.names())}")
    table: dict[Any, Mapping[str, Any]] = dict(cases)
    if yes is not None:
        table[True] = yes
    if no is not None:
        table[False] = no
    return ByCapability(capability, table)


def for_stack(stack: str, why: str, **expected: Any) -> ForStack:
    return ForStack(stack, expected, why)


@dataclass
class Context:
    """What ``run`` gets: the started stack, the ledger, the options and the settings.

    ``stack`` is typed by the protocol only: a scenario calls the Stack's methods, never a class's."""

    stack: Stack
    ledger: Ledger
    options: StackOptions
    workload: str
    scenario: Scenario

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
    expect: Sequence[Rule]  # applied in order; a later rule overrides an earlier one's keys
    options: StackOptions = StackOptions()
    # StackOptions overrides for stacks that have a capability: {"transactions": {"transactional": True}}
    options_when: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    needs_kit_brokers: bool = False  # restarts the broker: only with brokers the kit manages
    kinds: Mapping[str, Kind] = field(default_factory=dict)  # observation -> what it means (undeclared: info)

    def __post_init__(self) -> None:
        wrong = {key: kind for key, kind in self.kinds.items() if kind not in KINDS}
        if wrong:
            raise ValueError(f"scenario {self.name}: unknown kind(s) {wrong}; choose from {', '.join(KINDS)}")

    def options_for(self, caps: Capabilities) -> StackOptions:
        options = self.options
        for capability, overrides in self.options_when.items():
            if getattr(caps, capability):
                options = replace(options, **overrides)
        return options

    def expected(self, name: str, caps: Capabilities) -> dict[str, Any]:
        """What ``name`` must observe. Keys a rule singles out come first: they are the cell's
        distinguishing numbers in the report."""
        specific: dict[str, Any] = {}
        shared: dict[str, Any] = {}
        for rule in self.expect:
            found = rule.applies(name, caps)
            for key in found:
                specific.pop(key, None)
                shared.pop(key, None)
            (specific if rule.specific else shared).update(found)
        return {**specific, **shared}

    def check(self, expected: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
        """The mismatches between what was observed and what was expected, as sentences."""
        return [
            f"{key}: observed {observed.get(key)!r}, expected {describe(want)}"
            for key, want in expected.items()
            if not matches(want, observed.get(key))
        ]
