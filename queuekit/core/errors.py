"""Errors the kit reports to a person: one line, saying what happened and what to do."""
from __future__ import annotations


class KitError(RuntimeError):
    """A failure the user can act on. ``str(err)`` is the one line the CLI prints."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} — {fix}" if fix else what)


class WaitTimeout(KitError, TimeoutError):
    """A polled condition did not become true before its deadline."""


class NoDelayedDelivery(KitError):
    """``Stack.publish_delayed`` on a stack without a delayed delivery (``capabilities.delayed == "none"``)."""
