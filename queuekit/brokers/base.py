"""What every broker component offers the kit: start, stop, and say how it is."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from queuekit.core.config import Settings

Say = Callable[[str], None]  # progress messages for a person ("resolving jars…")


@dataclass(frozen=True)
class Status:
    name: str
    url: str
    managed: str  # "kit" (we started it), "external" (never touched), "stopped"
    healthy: bool
    pid: int | None = None
    version: str | None = None
    detail: str = ""
    config: dict | None = None  # settings that decide durability, as the running broker reports them (Redis's AOF)

    def as_dict(self) -> dict:
        return asdict(self)


class Component(Protocol):
    name: str
    settings: Settings

    def status(self) -> Status:
        """Observe, never change: is it up, where, which pid and version."""

    def start(self, say: Say) -> bool:
        """Bring it up and wait until it is ready. True when started now, False when reused."""

    def stop(self, say: Say) -> bool:
        """Stop what the kit started (never an external broker). True when something stopped."""
