"""Which shape the streams take on this node, and how a key finds its partition (super streams, RabbitMQ >= 3.11).

Two shapes, chosen by the node's version (the same rule ``Stack.capabilities_on`` judges the cells by):

* **3.10**: plain streams; every reader of a service reads everything (``topology.py``).
* **>= 3.11** (``SINCE``): each workload's entry stream is a **super stream** — an exchange
  ``stream.<event>`` routing to ``PARTITIONS`` partition streams ``stream.<event>-0 .. -N-1`` (the names
  rstream's ``create_super_stream`` gives) — and every service reads it with **single active consumer**
  per partition: the broker makes one subscriber of the group (``name`` = the service) active per
  partition and spreads the partitions of a super stream over the group's members (``super-stream``
  property). Kafka's consumer group, on RabbitMQ. The pipeline's inner streams (video) stay plain
  streams read by one active consumer per service (no key to partition by beyond the first hop).

The partition of a message: rstream's ``HashRoutingMurmurStrategy`` (what its ``SuperStreamProducer``
uses by default, and the Java client's hash routing) over the envelope's ``partition_key`` (the user, as
the Kafka stack's message key). The kit publishes to the chosen partition itself, under its named
producer, instead of through ``SuperStreamProducer.send``: that has no producer name, so a resend after a
dropped connection could not be deduplicated by the broker (``admin.publish``).
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rstream.superstream import HashRoutingMurmurStrategy, Metadata

from queuekit.core.config import Settings

SINCE = "3.11"  # super streams and single active consumer for streams (release notes 3.11.0)
VERSION_ENV = "QUEUEKIT_RABBITMQ_VERSION"  # the driver hands its node's version to its workers


def series(version: str) -> tuple[int, ...]:
    """"4.3.6" -> (4, 3), "4" -> (4,): ``queuekit.stacks.capabilities.series``, which a worker may not import."""
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def version(settings: Settings) -> str | None:
    """The node's series as the kit knows it (its own node's setting); None for someone else's RabbitMQ,
    which keeps the 3.10 shape the declaration describes (as ``queuekit.suite.runner.broker_version``)."""
    return None if settings.external("rabbitmq") else settings.rabbitmq_version


def partitioned(settings: Settings) -> bool:
    """Super streams + single active consumer on this node?"""
    found = version(settings)
    return found is not None and series(found) >= series(SINCE)


def names(super_stream: str, count: int) -> list[str]:
    """The partition streams of ``super_stream`` (rstream's naming: ``<super stream>-<index>``)."""
    return [f"{super_stream}-{i}" for i in range(count)]


class _Known(Metadata):
    """The partitions the kit declared (no locator round trip per message)."""

    def __init__(self, partitions: Sequence[str]):
        self._partitions = list(partitions)

    async def partitions(self) -> list[str]:
        return self._partitions

    async def routes(self, routing_key: str) -> list[str]:
        raise NotImplementedError("hash routing only")


async def routing_key(key: bytes) -> str:
    """The routing extractor: what the kit routes is the key itself (``route``), not a message."""
    return key.decode()


async def route(key: str, partitions: Sequence[str]) -> str:
    """The partition ``key`` belongs to: murmur3 of the key modulo the partition count (rstream's hash routing)."""
    # [semantics:partition-key] one key, one partition, one active reader of it per service: the key's order is kept
    chosen = await HashRoutingMurmurStrategy(routing_key).route(key.encode(), _Known(partitions))
    return chosen[0]


def partition_of(key: str, partitions: Sequence[str]) -> str:
    """``route`` outside an event loop."""
    return asyncio.run(route(key, partitions))
