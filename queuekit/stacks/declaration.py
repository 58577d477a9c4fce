"""What a Stack subclass declares about itself, and the check the registry runs when it loads one.

Everything the harness needs to know about a stack lives on its class (``*_app/stack.py``), never in a
table keyed by the stack's name elsewhere. Targets that must be imported lazily are dotted strings, as in
the registry: ``"package.module"`` for a module with named functions, ``"package.module:attr"`` for one
callable. ``check(cls)`` runs when ``registry.load_stack`` first loads a class: a required declaration
that is missing, or a target that does not import or is of the wrong kind, fails AT ONCE with a
``KitError`` naming what to add and where (kombu: "a missing method fails by name").

Required (no default on ``Stack``):

* ``name``, ``worker_module``, ``capabilities`` — what the stack is;
* ``raw_publisher`` — ``"module:callable"``; ``callable(stack)`` returns an object whose ``send(item)``
  puts a hostile input on the wire as any producer could (the hostile-input suite);
* ``observer`` — ``"module"`` with ``observe(settings) -> {workload: Observation}`` and
  ``links(settings)``, read by ``queuekit dashboard`` and ``/metrics``; ``None`` says the stack has no
  live view (its card says so);
* ``libraries`` — the distributions it runs on (versions come from ``importlib.metadata``);
* ``cluster`` — a ``ClusterPromise`` (it runs through the cluster faults, with what it promises), or
  ``None``: it takes no part in the cluster scenarios.

Optional (defaults on ``Stack``): ``by_hand``, ``client_loggers``, ``late_client_loggers``, ``bare_twin``,
``variant_of``, ``cell_cost``, ``own_vhost``, ``retry_timing``, ``hostile_outcomes``,
``throughput_options``, ``raw_reference``, ``capabilities_since`` (see ``Stack``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from queuekit.core.errors import KitError

if TYPE_CHECKING:
    from .base import Stack

NO_LOSS = {"lost": 0}


@dataclass(frozen=True)
class ClusterPromise:
    """A stack in the cluster fault scenarios (``scenarios/cluster_faults.py``): each fault of its broker's
    leader, with what must hold. An empty promise means measured and shown, not judged."""

    promise: dict[str, Any]  # observation -> value that must hold, e.g. NO_LOSS
    why: str  # the claim under test, for the report
    ci_faults: tuple[str, ...] = ()  # the faults `.ci/run` runs on this stack (the rest: QUEUEKIT_CLUSTER_FULL=1)


@dataclass(frozen=True)
class RetryTiming:
    """How the framework spaces its retries, as measured (the delivery contract's retry test): seconds
    between attempts, from the failed attempt's start or finish, as (low, high or None) windows."""

    backoff_ms: int = 200
    measured_from: Literal["start", "finish"] = "start"
    first: tuple[float, float | None] = (0.2, None)
    second: tuple[float, float | None] = (0.4, None)


# What each required declaration is, for the message that names a missing one.
REQUIRED: dict[str, str] = {
    "name": 'the registry alias, e.g. name = "mystack"',
    "worker_module": 'the module a worker process runs, e.g. worker_module = "mystack_app.worker"',
    "capabilities": "what the stack is, as data: capabilities = Capabilities(...)",
    "raw_publisher": 'the hostile suite\'s wire, e.g. raw_publisher = "mystack_app.raw_publisher:RawPublisher"',
    "observer": 'the live view, e.g. observer = "mystack_app.observe" (or observer = None: no live view)',
    "libraries": 'the distributions it runs on, e.g. libraries = ("confluent-kafka",)',
    "cluster": "cluster = ClusterPromise(...) to run through the cluster faults, or cluster = None",
}
MODULE_FUNCTIONS = {"observer": ("observe", "links"), "by_hand": ("declare", "commands")}  # "module" targets
CALLABLES = ("raw_publisher", "bare_twin")  # "module:attr" targets


@dataclass
class Problems:
    cls: type
    found: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.found.append(text)

    def raise_if_any(self) -> None:
        if self.found:
            where = f"{self.cls.__module__}.{self.cls.__qualname__}"
            raise KitError(f"stack class {where} is not fully declared: " + "; ".join(self.found),
                           f"add the declarations to {where} (see queuekit/stacks/declaration.py)")


def target(dotted: str) -> Any:
    """Import ``"module"`` or ``"module:attr"``."""
    module, _, attr = dotted.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attr) if attr else loaded


def check(cls: type[Stack]) -> None:
    """Raise ``KitError`` naming every missing or broken declaration of ``cls``."""
    problems = Problems(cls)
    for attr, what in REQUIRED.items():
        if not hasattr(cls, attr):
            problems.add(f"missing {attr} ({what})")
    for attr in ("raw_publisher", "observer", "by_hand", "bare_twin"):
        dotted = getattr(cls, attr, None)
        if dotted is None:
            continue
        if not isinstance(dotted, str):
            problems.add(f"{attr} must be a dotted string, not {dotted!r}")
            continue
        try:
            loaded = target(dotted)
        except (ImportError, AttributeError) as exc:
            problems.add(f"{attr} = {dotted!r} does not import ({type(exc).__name__}: {exc})")
            continue
        if attr in CALLABLES and (":" not in dotted or not callable(loaded)):
            problems.add(f"{attr} = {dotted!r} must name a callable as 'module:attr'")
        for function in MODULE_FUNCTIONS.get(attr, ()):
            if not isinstance(loaded, ModuleType) or not callable(getattr(loaded, function, None)):
                problems.add(f"{attr} = {dotted!r} must be a module with {function}()")
    from .capabilities import Capabilities, series

    for start, changes in getattr(cls, "capabilities_since", {}).items():  # what changes with the broker's version
        unknown = sorted(set(changes) - set(Capabilities.names()))
        if not series(start) or unknown:
            problems.add(f"capabilities_since[{start!r}] must map a version (\"4.0\") to Capabilities fields"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    libraries = getattr(cls, "libraries", ())
    if not isinstance(libraries, tuple) or not all(isinstance(lib, str) for lib in libraries):
        problems.add(f"libraries must be a tuple of distribution names, not {libraries!r}")
    cluster = getattr(cls, "cluster", None)
    if cluster is not None and not isinstance(cluster, ClusterPromise):
        problems.add(f"cluster must be a ClusterPromise or None, not {cluster!r}")
    if not isinstance(getattr(cls, "retry_timing", RetryTiming()), RetryTiming):
        problems.add("retry_timing must be a RetryTiming")
    problems.raise_if_any()
