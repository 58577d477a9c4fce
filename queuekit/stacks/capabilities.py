"""What a stack is, as data: the scenario suite derives its expectations from these fields.

Each field is a property of the broker + framework pair that a team would
put in a design document. Scenarios never read these values back as
observations: they observe the broker and the ledger, and the capability
only says what the observation should be (``by_capability`` in
``queuekit.suite.model``). A stack whose observation disagrees with its
declared capability fails its cell — the declaration is tested, not trusted.

What depends on the broker's version is data too: a stack's ``capabilities_since`` maps a version to the
fields that change from it on (``{"4.0": {"default_delivery_limit": 20}}``), and ``on_version`` gives
the capabilities a cell on that version is judged by (``Stack.capabilities_on``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal


@dataclass(frozen=True)
class Capabilities:
    broker: Literal["rabbitmq", "kafka", "redis", "memory"]  # "memory": the StubStack, no broker process at all
    # One publish reaches every subscribing service through the broker (fanout exchange, a group per service,
    # an offset per service). False: the producer sends one copy per subscriber.
    native_fanout: bool
    # With several workers, one key's messages are still handled in publish order (a partition per key range,
    # one reader per partition).
    per_key_order: bool
    # A brand-new consumer can read messages that were already consumed and acknowledged.
    replayable: bool
    # Where a failed message ends: "native" = the broker or the framework routes it (DLX, .XQ, dlq.* topic);
    # "adapter" = the kit's adapter code writes it to a dead-letter place.
    dead_letter: Literal["native", "adapter"]
    # An at-most-once mode exists: the message is acknowledged on receipt, before the handler runs.
    ack_on_receipt_possible: bool
    # Consume-transform-produce in one broker transaction (outputs and the input's offset together).
    transactions: bool
    # Consumers fetch; the broker never refuses a producer because consumers are slow (lag grows instead).
    pull_based: bool
    # A consumer whose handler outlives a liveness deadline (max.poll.interval.ms) loses its message mid-task.
    evicts_slow_consumer: bool
    # More workers than partitions all get work (queues; share groups) — False: parallelism <= partitions.
    work_sharing_beyond_partitions: bool = True
    # The broker itself caps redeliveries of a message (x-delivery-limit, share-group delivery count).
    delivery_limit: bool = False
    # A service's workers share its messages, each message going to one of them (queues, groups, share groups).
    # False: every consumer of a service receives every message (a RabbitMQ 3.10 stream: no single active
    # consumer, no super streams), so "more workers" means the same work done again, not more throughput.
    competing_consumers: bool = True
    # What takes a message back from a consumer that is still handling it (the lease-expiry scenario):
    # "none" — nothing within a task's time (RabbitMQ's consumer_timeout is broker-wide, 30 min on the kit's
    # broker, and not settable per queue on 3.10); "member" — the whole member is evicted after
    # max.poll.interval.ms and its partitions move; "record" — each record's acquisition lock expires
    # (share.record.lock.duration.ms) and that record alone is delivered again, while its handler still runs.
    # "record" also covers a broker that re-delivers one message after a timeout while its worker runs on (Celery
    # on Redis: visibility_timeout; Redis Streams: XAUTOCLAIM of an entry pending longer than min-idle-time).
    # "none" also covers a lease that only matters once the worker is gone (Dramatiq on Redis: a dead worker's
    # messages are requeued after its heartbeat stops; RQ: a job runs until its own job_timeout kills it).
    lease: Literal["none", "member", "record"] = "none"
    # The returns a message gets from the broker when the kit sets no limit of its own (None: unlimited).
    # RabbitMQ 4.0+ quorum queues: 20 (a stack declares it in ``capabilities_since``, not here).
    default_delivery_limit: int | None = None
    # Who holds a delayed / ETA message until it is due (the delayed-survives scenario): "none" — no delayed
    # delivery (``publish_delayed`` refuses); "framework" — a worker fetches it and keeps it, unacked, until
    # its time (Celery's ETA on classic queues and on Kafka, Dramatiq's delay queue); "broker" —
    # the broker keeps it until due and only then hands it to a worker (kombu's native delayed delivery on
    # quorum queues, RQ's scheduled-job registry, a delayed-message exchange).
    delayed: Literal["none", "framework", "broker"] = "none"
    # How a retry's wait follows the countdown the kit asks for (backoff_ms * 2**n; the retry-backoff scenario):
    # "exact" — a timer or not-before time at the countdown (late under load, never early); "jittered" — drawn at
    # random from a doubling window (Dramatiq: backoff * 2**n * U[1, 2), so two adjacent windows meet and the
    # second retry can start sooner than the first); "coarse" — rounded to a tick or poll cycle of a second or so
    # (RQ's scheduler, kombu's native delayed delivery, kombu's Kafka polling): flat below a second;
    # "immediate" — the broker redelivers at once, with no delay at all (a RELEASEd share-group record).
    retry_delay: Literal["exact", "jittered", "coarse", "immediate"] = "exact"

    # A delivery leaves the broker before the consumer's unacked record of it is written, in two steps
    # (kombu's Redis transport: BRPOP pops the message, then its QoS HSETs it into the unacked hash): a consumer
    # SIGKILLed between the two loses that message, acks_late or not, and so does one whose connection the broker
    # drops then (a restart, a kill). The chaos kill loop allows at most one such loss per kill on these stacks and
    # none elsewhere; broker-restart and broker-kill at most one per worker.
    popped_before_tracked: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def series(version: str) -> tuple[int, ...]:
    """ "4.3.6" -> (4, 3); "3.10" -> (3, 10): versions compare numerically ("3.10" < "3.11" < "4.0")."""
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def on_version(declared: Capabilities, since: Mapping[str, Mapping[str, Any]], version: str | None) -> Capabilities:
    """``declared`` with every ``since[v]`` applied for v <= ``version``, oldest first; an unknown version
    (None: someone else's broker) keeps the declaration."""
    if version is None:
        return declared
    for start in sorted(since, key=series):
        if series(start) <= series(version):
            declared = replace(declared, **since[start])
    return declared
