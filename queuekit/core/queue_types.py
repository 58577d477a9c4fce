"""RabbitMQ queue types, as both RabbitMQ stacks declare them (``StackOptions.queue_type``).

Classic queues are the single-node default. Quorum queues are RabbitMQ's replicated,
durable queue type (Raft); classic mirroring is gone in 4.0. What changes for a
task queue, and where the kit's stacks handle it:

* the broker counts redeliveries (``x-delivery-count``) and, with ``x-delivery-limit``,
  dead-letters a message handed back too often (a worker that dies on it every time);
  RabbitMQ 3.10 has NO default limit, 4.0+ one of 20, so the kit always sets one (``delivery_limit=None``
  leaves it to the broker) — and sets one on its quorum dead-letter queues too, where 4.x's default
  would drop a peeked dead letter (``DEAD_LETTER_DELIVERY_LIMIT``);
* no global QoS: prefetch is per consumer and cannot be raised for a running consumer
  (Celery's eta handling relied on that; Celery >= 5.5 detects quorum queues);
* a queue's type is fixed at declaration: redeclaring ``celery.signup`` as quorum
  over a classic one fails with 406 PRECONDITION_FAILED, so a stack's ``purge``
  deletes its queues (never redeclares them) and a switch of type starts clean.
"""
from __future__ import annotations

from typing import Any

from .options import StackOptions

QUEUE_TYPES = ("classic", "quorum")


def work_queue_arguments(options: StackOptions) -> dict[str, Any]:
    """RabbitMQ arguments of a work queue under ``options.queue_type`` (both RabbitMQ stacks declare these).

    Quorum: the broker caps redeliveries (``x-delivery-limit``) and dead-letters at-least-once (the
    message stays in its queue until the dead-letter queue confirmed it), which RabbitMQ honours only
    with ``x-overflow=reject-publish`` (with drop-head it falls back to at-most-once).
    """
    if options.queue_type not in QUEUE_TYPES:
        raise ValueError(f"queue_type {options.queue_type!r}: choose from {', '.join(QUEUE_TYPES)}")
    if options.queue_type == "classic":
        return {}
    limit = {} if options.delivery_limit is None else {"x-delivery-limit": options.delivery_limit}  # None: the broker's
    return {"x-queue-type": "quorum", **limit, "x-overflow": "reject-publish", "x-dead-letter-strategy": "at-least-once"}


# A quorum dead-letter queue's own delivery limit: as good as none. RabbitMQ 4.x gives a quorum queue without
# x-delivery-limit a limit of 20, and a message dead-lettered for its delivery limit brings its
# x-delivery-count (21 past the default) into the dead-letter queue: there its first return (a peek by the
# management API, the way the kit reads dead letters) drops it, since the dead-letter queue has no DLX of its
# own. Observed on 4.3.6 (tests/brokers/test_rabbitmq4.py); 3.10 accepts the value and never counts that far.
DEAD_LETTER_DELIVERY_LIMIT = 2**31 - 1  # -1 is no way out: 3.10 reads it as 0 and drops at the first peek


def dead_letter_queue_arguments(options: StackOptions) -> dict[str, Any]:
    """A dead-letter queue has the same type as its work queue and, if quorum, a limit it never reaches
    (``DEAD_LETTER_DELIVERY_LIMIT``): dead letters are read by peeking, which returns them."""
    if options.queue_type != "quorum":
        return {}
    return {"x-queue-type": "quorum", "x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT}
