"""A broker the kit did not start: it is checked, used, and never stopped."""
from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from queuekit.core.errors import KitError, WaitTimeout
from queuekit.core.waiting import wait_for

from .base import Component, Say, Status


class Probed(Component, Protocol):
    def ready(self) -> bool: ...  # one probe: does it answer now

REACH_TIMEOUT = 15.0


class External:
    """Wraps a local component's health checks around someone else's broker."""

    def __init__(self, inner: Probed, env_var: str):
        self.inner = inner
        self.name = inner.name
        self.settings = inner.settings
        self.env_var = env_var

    def status(self) -> Status:
        return replace(self.inner.status(), managed="external", pid=None)

    def start(self, say: Say) -> bool:
        try:
            wait_for(self.inner.ready, timeout=REACH_TIMEOUT, what=f"external {self.name}")
        except WaitTimeout as exc:
            raise KitError(f"the external {self.name} named by {self.env_var} is unreachable ({exc.what})",
                           f"check {self.env_var}, or unset it to let the kit start its own") from None
        ensure = getattr(self.inner, "ensure_namespace", None)  # the kit's own vhost on a shared RabbitMQ
        if ensure is not None:
            ensure(say)
        return False

    def stop(self, say: Say) -> bool:
        return False  # never ours to stop
