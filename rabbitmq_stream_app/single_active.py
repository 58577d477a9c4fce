"""What one service's reader subscribes to, and — on RabbitMQ >= 3.11 — how it takes a partition over.

``plan`` lists a reader's subscriptions:

* 3.10 (plain streams): one, the service's stream, offset reference ``<service>@<worker>`` (every reader
  reads everything; ``topology.py``);
* >= 3.11 (``partitions.partitioned``): one per partition of the entry super stream (or the service's
  plain pipeline stream), all under the reference ``<service>`` — the group's, shared by every worker —
  with ``single-active-consumer``: the broker makes one member of the group active per partition and
  tells each member when that changes (a consumer update, answered by ``Takeover.update``).

``Takeover`` is where the delivery guarantee of a moving partition is decided:

* **activated**: resume after the offset the group stored under the service's name for that partition
  (``query_offset``; none stored: the partition's first message). The answer to the broker's consumer update
  IS the start offset: nothing is delivered before it;
* **deactivated** (another member joined and the broker rebalances the super stream): finish the message in
  hand, store the last handled offset, and only then answer — the broker activates the next member after
  the answer, so the next member reads the stored offset and starts after it. A member that dies instead
  (SIGKILL) stores nothing more: its successor re-reads since the last periodic store (at-least-once, the
  ledger's guard absorbing the repeat), as on 3.10 and as Kafka's uncommitted offsets.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from rstream import Consumer, EventContext, OffsetNotFound, OffsetSpecification, OffsetType

from .offsets import StoredOffsets
from .partitions import names
from .topology import Route


@dataclass
class Subscription:
    stream: str  # a plain stream, or one partition of a super stream
    reference: str  # the offset reference: ``<service>@<worker>`` (3.10), ``<service>`` (the group's, >= 3.11)
    producer_name: str  # appends from this subscription: publishing id = its input offset + 1 (per stream: monotonic)
    properties: dict[str, str] = field(default_factory=dict)
    active: bool = True  # a single-active-consumer subscription waits for the broker to activate it

    @property
    def single_active(self) -> bool:
        return "single-active-consumer" in self.properties


def plan(route: Route, worker: str, partitioned: bool, entry: str, partition_count: int) -> list[Subscription]:
    """The subscriptions of ``route``'s reader in ``worker``; ``entry``: the workload's entry (super) stream."""
    labels = {"service": route.service, "worker": worker}  # the management API shows them: consumers_ready reads them
    if not partitioned:
        return [Subscription(route.source, route.reference(worker), route.producer_name, labels)]
    # [semantics:partition-key] one group per service: the broker keeps ONE active member per partition,
    # and spreads a super stream's partitions over the members (the super-stream property)
    sac = {**labels, "single-active-consumer": "true", "name": route.service}
    if route.source != entry:  # a pipeline stream: one active reader of the service at a time
        return [Subscription(route.source, route.service, route.producer_name, sac, active=False)]
    return [Subscription(p, route.service, f"{route.producer_name}@{p}", {**sac, "super-stream": entry}, active=False)
            for p in names(entry, partition_count)]


async def resume_offset(reader: Consumer, stream: str, reference: str) -> OffsetSpecification:
    """After the offset stored under ``reference``; none stored: the first message (a new Kafka group, earliest)."""
    try:
        stored = await reader.query_offset(stream, reference)
    except OffsetNotFound:
        return OffsetSpecification(OffsetType.FIRST, 0)
    return OffsetSpecification(OffsetType.OFFSET, stored + 1)  # the stored one was handled: the next


STORED_WAIT_S = 2.0  # how long a deactivated member waits to read its stored offset back before answering


class Takeover:
    """The ``consumer_update_listener`` of one subscription. ``reader``: a consumer on a connection of its own
    (the listener runs inside the subscribing connection's frame loop, which cannot read a reply meanwhile)."""

    def __init__(self, sub: Subscription, offsets: StoredOffsets, reader: Consumer, busy: asyncio.Lock,
                 forget: Callable[[], object]):
        self.sub, self.offsets, self.reader, self.busy, self.forget = sub, offsets, reader, busy, forget

    async def update(self, is_active: bool, _ctx: EventContext) -> OffsetSpecification:
        if is_active:
            # [semantics:offset-commit] activated: start after the group's stored offset for this partition
            start = await resume_offset(self.reader, self.sub.stream, self.sub.reference)
            self.forget()  # what this worker handled before is no guide: others may have read on since
            self.offsets.handled = self.offsets.stored = None  # nor may its old position be stored over theirs
            self.sub.active = True
            return start
        async with self.busy:  # the message in hand finishes (and its outputs are confirmed) first
            # [semantics:offset-commit] stored BEFORE answering: the broker activates the next member only after
            # the answer, and that member resumes after this offset
            await self.hand_back()
        return OffsetSpecification(OffsetType.NEXT, 0)  # ignored for an inactive member (the protocol wants one)

    async def hand_back(self) -> None:
        """Stop handling this partition and store how far it got, read back from the broker (the caller holds
        ``busy``). Also on a warm stop: the member activated after us then starts where we stopped."""
        self.sub.active = False  # anything still buffered from this partition is left to the next member
        await self.offsets.flush()
        await self._stored()

    async def _stored(self) -> None:
        """``store_offset`` has no reply: read the offset back (another connection) until the broker has it."""
        want, deadline = self.offsets.stored, asyncio.get_running_loop().time() + STORED_WAIT_S
        while want is not None and asyncio.get_running_loop().time() < deadline:
            try:
                if await self.reader.query_offset(self.sub.stream, self.sub.reference) >= want:
                    return
            except OffsetNotFound:
                pass
            await asyncio.sleep(0.02)  # polls the broker's offset store against the deadline above
