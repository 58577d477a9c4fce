"""Where a reader starts and how its progress is stored — and with it the delivery guarantee.

The broker's offset store: ``store_offset(stream, reference, offset)`` /
``query_offset(stream, reference)``, one stored offset per (stream,
reference). It is what a stream user is meant to use (nothing of the app's to
keep consistent with the log), and the broker's own view of each reader's
progress: the stack's ``backlog`` and ``drain`` read it back.

``StoredOffsets`` (default): the offset of a handled message is *remembered*
once its outputs (forward, dead letter) are confirmed, and *stored* every
``STORE_INTERVAL_S`` and when the reader stops — the pattern of Kafka's stored
offsets + auto-commit. A crash in between re-reads what was handled since the
last store: at-least-once, the ledger's guard absorbing the repeat.
``early_ack``: the offset is stored *before* handling instead: at-most-once.

Found on 3.10: a stored offset is itself written into the stream as a
tracking entry, and takes an offset of its own. Offsets are therefore not
dense and "tail minus stored" counts tracking entries too; zero still means
"read to the end". Storing less often writes fewer of them.
"""
from __future__ import annotations

import asyncio
import logging

from rstream import Consumer, ConsumerOffsetSpecification, OffsetNotFound, OffsetType

log = logging.getLogger("rabbitmq_stream_app.offsets")
STORE_INTERVAL_S = 0.2  # how stale a stored offset may be; drain() waits for it


async def resume_point(consumer: Consumer, stream: str, reference: str) -> ConsumerOffsetSpecification:
    """After the reference's stored offset; a reference without one starts at the log's first message
    (as a new Kafka group with ``auto.offset.reset=earliest``)."""
    try:
        stored = await consumer.query_offset(stream, reference)
    except OffsetNotFound:
        return ConsumerOffsetSpecification(OffsetType.FIRST, None)
    return ConsumerOffsetSpecification(OffsetType.OFFSET, stored + 1)  # the stored one was handled: the next


class StoredOffsets:
    """At-least-once: remember after handling, store in the background (``run``) and on ``flush``."""

    def __init__(self, consumer: Consumer, stream: str, reference: str):
        self.consumer, self.stream, self.reference = consumer, stream, reference
        self.handled: int | None = None  # the last offset whose message (and its outputs) is done
        self.stored: int | None = None

    def done(self, offset: int) -> None:
        # [semantics:offset-commit] Called AFTER processing and after any forward / dead letter was confirmed: a crash
        # before the next store re-reads this message from the stored offset: at-least-once.
        self.handled = offset

    async def early(self, offset: int) -> None:
        """early_ack: store BEFORE handling: a crash mid-task skips the message on restart (at-most-once)."""
        await self._store(offset)
        self.handled = offset

    async def run(self) -> None:
        """The background store loop (cancelled when the reader stops; then ``flush``)."""
        while True:
            await asyncio.sleep(STORE_INTERVAL_S)
            await self.flush()

    async def flush(self) -> None:
        if self.handled is not None and self.handled != self.stored:
            await self._store(self.handled)

    async def _store(self, offset: int) -> None:
        # Fire-and-forget in the protocol (no response frame): the broker appends a tracking entry.
        await self.consumer.store_offset(self.stream, self.reference, offset)
        self.stored = offset
