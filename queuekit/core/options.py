"""How a stack's workers are run: one frozen dataclass, handed to worker processes as JSON in their env.

Every stack accepts every field; what each one does on a given stack is
written in that stack's feature sheet (``<app>/stack.py``'s docstring).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

OPTIONS_ENV = "QUEUEKIT_STACK_OPTIONS"


@dataclass(frozen=True)
class StackOptions:
    workers: int = 2  # worker OS processes
    concurrency: int = 1  # slots per worker process (threads)
    prefetch: int = 1  # messages a worker may hold unacknowledged (Kafka: ignored, pull-based)
    guard: bool = True  # the ledger's idempotency guard
    max_retries: int = 3  # retries after the first attempt, then dead-letter
    backoff_ms: int = 100  # first retry delay; doubles per retry
    early_ack: bool = False  # ack on receipt instead of after the handler (Celery's default)
    partitions: int = 4  # Kafka partitions per topic
    queue_max_length: int | None = None  # RabbitMQ x-max-length with overflow=reject-publish
    queue_type: str = "classic"  # RabbitMQ: "classic" or "quorum" (x-queue-type; Kafka: ignored)
    # quorum queues: x-delivery-limit, how often the broker hands a message back (worker lost, requeue)
    # before it dead-letters it. RabbitMQ 3.10 has no default (unlimited); framework retries are new messages.
    delivery_limit: int = 3
    extra: dict[str, Any] = field(default_factory=dict)  # stack-specific knobs, documented per stack


def options_env(options: StackOptions) -> dict[str, str]:
    """How a stack hands its options to the worker processes it spawns."""
    return {OPTIONS_ENV: json.dumps(asdict(options))}


def options_from_env() -> StackOptions:
    """Inside a worker process: the options the stack started it with (defaults when run by hand)."""
    raw = os.environ.get(OPTIONS_ENV)
    return StackOptions(**json.loads(raw)) if raw else StackOptions()
