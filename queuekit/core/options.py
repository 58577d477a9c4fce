"""How a stack's workers are run: one frozen dataclass, handed to worker processes as JSON in their env.

Every stack accepts every field; what each one does on a given stack is
written in that stack's feature sheet (``<app>/stack.py``'s docstring). The
fields below the line are honoured by some stacks only (the comment names
them); a stack that does not name a field ignores it. Closed sets are
``Literal`` types, so mypy checks the values a scenario or a test sets.

The worker side reads them back with ``options_from_env``, which also takes
the older shape (stack-specific knobs under ``"extra"``, as a by-hand recipe
written before may still export) and names any key it does not know.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

OPTIONS_ENV = "QUEUEKIT_STACK_OPTIONS"

QueueType = Literal["classic", "quorum"]
LongTask = Literal["block", "pause-resume"]
AckMode = Literal["record", "batch"]  # kafka_share: see kafka_share_app/acks.py
CrashAt = Literal["after-effect", "after-output"]
Transport = Literal["amqp", "confluentkafka", "redis"]


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
    queue_type: QueueType = "classic"  # RabbitMQ x-queue-type (Kafka: ignored)
    # quorum queues: x-delivery-limit, how often the broker hands a message back (worker lost, requeue)
    # before it dead-letters it; framework retries are new messages. None: no x-delivery-limit, the broker's
    # own default applies (RabbitMQ 3.10: unlimited; 4.0+: 20).
    delivery_limit: int | None = 3
    # -- honoured by some stacks only (None: the stack's own default) ------------------------------------
    session_timeout_ms: int | None = None  # kafka, kafka_share, celery_kafka: how long a dead member keeps its share
    max_poll_interval_ms: int | None = None  # kafka, kafka_share, celery_kafka: a member slower than this is evicted
    transactional: bool = False  # kafka: consume-transform-produce in one Kafka transaction per record
    transaction_timeout_ms: int | None = None  # kafka (transactional): a dead worker's open transaction is aborted after this
    long_task: LongTask = "block"  # kafka: handle in the poll loop, or pause the partitions and keep polling
    # the per-message lease, which a stack with lease="record" maps to its own setting: kafka_share's
    # share.record.lock.duration.ms, celery_redis's visibility_timeout, redis_streams' XAUTOCLAIM min-idle time
    # (the lease-expiry scenario sets it for every stack)
    record_lock_ms: int | None = None
    ack: AckMode = "record"  # kafka_share: acknowledgements sent per record, or one commit per poll batch (acks.py)
    batch_records: int = 500  # kafka_share, ack="batch": max.poll.records, the records one commit settles
    task_events: bool = True  # celery*: Flower task events (the bench turns them off, as a plain app has them)
    loglevel: str = "INFO"  # celery*: the worker's log level
    # -- internal switches: set by the kit, not a user's knob ---------------------------------------------
    transport: Transport = "amqp"  # celery_app: "confluentkafka" is celery_kafka, "redis" celery_redis (their prepare)
    stock_framework: bool = False  # the framework-drops scenario: the framework's own consumer, not the kit's
    crash_at: CrashAt = "after-effect"  # the exactly-once scenario: where its victim crashes


FIELDS = frozenset(f.name for f in fields(StackOptions))


def options_env(options: StackOptions) -> dict[str, str]:
    """How a stack hands its options to the worker processes it spawns."""
    return {OPTIONS_ENV: json.dumps(asdict(options))}


def options_from_json(raw: str) -> StackOptions:
    """The options a JSON object names; the older ``{"extra": {...}}`` shape too (its keys are fields now)."""
    doc: dict[str, Any] = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError(f"{OPTIONS_ENV} must be a JSON object, not {type(doc).__name__}")
    legacy = doc.pop("extra", None) or {}
    merged = {**legacy, **doc}
    unknown = sorted(set(merged) - FIELDS)
    if unknown:
        raise ValueError(f"{OPTIONS_ENV}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
    return StackOptions(**merged)


def options_from_env() -> StackOptions:
    """Inside a worker process: the options the stack started it with (defaults when run by hand)."""
    raw = os.environ.get(OPTIONS_ENV)
    return options_from_json(raw) if raw else StackOptions()
