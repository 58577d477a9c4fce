"""A throwaway stack defined in the test suite, declaring ONLY what a stack must declare.

Its broker parts are the in-memory StubStack's (no broker); everything the harness needs to know
about it is the required declarations below, nothing else. Registered for a while by
``tests/unit/test_declarations.py`` (``registry.STACKS["throwaway"] = "throwaway_stack:ThrowawayStack"``)
or, for a pytest run that collects the per-stack suites, with ``-p throwaway_stack``.
"""
from __future__ import annotations

from queuekit.stacks.stub import STUB_CAPABILITIES, StubStack

TARGET = "throwaway_stack:ThrowawayStack"


class Wire:
    """Its raw publisher: a hostile input's bytes as they are."""

    def __init__(self, stack):
        self.stack = stack

    def send(self, item, workload: str = "signup") -> None:
        self.stack.publish_raw(workload, item.payload)


class ThrowawayStack(StubStack):
    # the required declarations (queuekit/stacks/declaration.py: REQUIRED), each its own, none inherited
    name = "throwaway"
    worker_module = "queuekit.stacks.stub"  # never run as a process: the stub's threads run it
    capabilities = STUB_CAPABILITIES
    raw_publisher = "throwaway_stack:Wire"
    observer = None
    libraries = ()
    cluster = None


def pytest_load_initial_conftests(early_config, parser, args) -> None:
    """``pytest -p throwaway_stack``: the stack is registered before any conftest or test module is loaded."""
    from queuekit.stacks import registry

    registry.STACKS["throwaway"] = TARGET
