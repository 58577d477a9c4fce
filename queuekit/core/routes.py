"""Where a service reads and writes in the log-based apps: one log (Kafka topic, RabbitMQ or Redis stream) per event.

Each service reads the log named for the event it consumes (``Handler.consumes``): a pipeline step's
output is the next step's input, and the services of a fan-out share one log. The apps subclass
``LogRoute`` with their own prefix (``qk.``, ``qks.``, ``stream.``; ``redis_streams_app`` makes it a field,
the install's key prefix) and add what only they have (retry topics, consumer groups, offset references).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from queuekit.core.execute import handler_for, next_service


@dataclass(frozen=True)
class LogRoute:
    """Where one service reads and forwards."""

    service: str
    prefix: ClassVar[str] = ""

    @cached_property  # asked per record by a pipeline step's consumer
    def source(self) -> str:
        """The log this service consumes."""
        return self.prefix + handler_for(self.service).consumes

    @cached_property
    def sink(self) -> str | None:
        """The next pipeline step's log, or None (end of pipeline / not a pipeline)."""
        after = next_service(self.service)
        return self.prefix + handler_for(after).consumes if after else None
