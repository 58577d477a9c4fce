"""Stream entries as the reader sees them: every entry of a chunk becomes an ``Entry``, decodable or not.

rstream 1.1.1 decodes inside its delivery loop (``Consumer._on_deliver``: ``decoder(message)`` for each
entry of ``Deliver.get_messages()``) with no error handling of its own: an entry that is not AMQP 1.0, or
AMQP whose maps it cannot build (a list as a map key), raises there, the rest of the chunk is dropped
with a log line, and the subscription goes on with the next chunk — the reader never saw those entries,
so it stored offsets past them (observed: no dead letter; a good entry in the same chunk gone too).
A sub-entry batch (several records compressed into one entry) is inflated by ``gzip.decompress`` with
no bound (a few hundred bytes can ask for gigabytes) and an unknown compression type raises the same way.

Here nothing raises: ``SafeConsumer`` walks a chunk itself (``chunk_entries``), inflates a batch only up
to ``MAX_BATCH_BYTES`` (refused before inflating further), and ``decode_entry`` turns each entry into
an ``Entry`` that either holds the AMQP message or says why not, with the entry's ORIGINAL bytes
(for a batch that could not be inflated: its compressed bytes) for the dead letter. Offsets are counted
as rstream counts them (one per record), so a reader's stored offset never passes an entry it did not
settle (``consumers.py`` dead-letters every ``Entry`` with a problem before its offset is done).

Hand-written because rstream has no hook for it: ``_filter_messages`` is rstream's private generator,
overridden with the same offset arithmetic.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from rstream import AMQPMessage, Consumer, OffsetType, amqp_decoder

from queuekit.core.envelope import MAX_ENVELOPE_BYTES

RECORD_OVERHEAD = 4096  # AMQP sections around an envelope (properties, application properties)
MAX_BATCH_BYTES = 16 * 1024 * 1024  # the most a sub-entry batch may inflate to, whatever it declares
KEPT_BYTES = 64 * 1024  # what an undecodable entry's dead letter keeps of its raw bytes
AMQP_SECTION = b"\x00\x53"  # every AMQP 1.0 message section starts as a described type with a small-ulong code


@dataclass(frozen=True)
class Undecodable:
    """A record the chunk walk could not produce (its batch would not inflate): why, and what it had."""

    raw: bytes
    problem: str


@dataclass(frozen=True)
class Entry:
    raw: bytes  # the entry as stored (truncated to KEPT_BYTES when it has a problem)
    message: AMQPMessage | None
    problem: str | None = None  # None: ``message`` is the decoded AMQP 1.0 message

    @property
    def body(self) -> bytes:
        """The envelope bytes: the AMQP data section; none gives b"" (an empty publish is stored without one).
        A body of another kind (an AMQP value or sequence) gives the raw entry: the envelope check names it."""
        body = self.message.body if self.message is not None else None
        if body is None:
            return b""
        return bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else self.raw


def decode_entry(item: bytes | Undecodable) -> Entry:
    """The ``decoder`` for ``SafeConsumer.subscribe``: never raises."""
    if isinstance(item, Undecodable):
        return Entry(item.raw, None, item.problem)
    raw = bytes(item)
    if raw[:2] != AMQP_SECTION:  # rstream would "decode" some such bytes into an empty message
        return Entry(raw[:KEPT_BYTES], None, "not an AMQP 1.0 message (no described section first)")
    try:
        return Entry(raw, amqp_decoder(raw))
    except Exception as exc:  # noqa: BLE001 - anything rstream's AMQP decoder raises is the entry's fault
        return Entry(raw[:KEPT_BYTES], None, f"not an AMQP 1.0 message rstream can decode: {type(exc).__name__}: "
                                             f"{str(exc)[:200]}")


def stock_entry(raw: bytes) -> Entry:
    """rstream's own ``amqp_decoder``, raising where it raises (``extra["stock_framework"]``: what it drops)."""
    return Entry(bytes(raw), amqp_decoder(raw))


def chunk_entries(data: bytes, num_entries: int) -> Iterator[bytes | Undecodable]:
    """The records of one chunk, as ``Deliver.get_messages`` lists them, but a sub-entry batch that cannot be
    inflated within bounds gives one ``Undecodable`` per record it declares (so offsets stay aligned)."""
    pos = 0
    for _ in range(num_entries):
        entry_type = data[pos]
        if entry_type & 0x80 == 0:  # a simple entry: 4-byte size, then the record
            size = int.from_bytes(data[pos:pos + 4], "big")
            yield data[pos + 4:pos + 4 + size]
            pos += 4 + size
            continue
        head = pos + 1  # sub-entry batch: type byte, count (2), uncompressed size (4), data size (4), data
        count = int.from_bytes(data[head:head + 2], "big")
        declared = int.from_bytes(data[head + 2:head + 6], "big")
        size = int.from_bytes(data[head + 6:head + 10], "big")
        compressed = bytes(data[head + 10:head + 10 + size])
        pos = head + 10 + size
        try:
            yield from _records(inflate((entry_type & 0x70) >> 4, compressed, declared, count), count)
        except ValueError as exc:
            yield from [Undecodable(compressed[:KEPT_BYTES], f"sub-entry batch of {count}: {exc}")] * count


def inflate(kind: int, compressed: bytes, declared: int, count: int) -> bytes:
    """A batch's records, inflated no further than they may be: refused BEFORE inflating past the bound."""
    bound = min(MAX_BATCH_BYTES, count * (MAX_ENVELOPE_BYTES + RECORD_OVERHEAD + 4))
    if declared > bound:
        raise ValueError(f"declares {declared} bytes inflated, over the {bound}-byte bound")
    if kind == 0:
        out = compressed
    elif kind == 1:  # gzip, the one codec rstream ships
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(compressed, declared + 1)  # max_length: stops one byte past the promise
        except zlib.error as exc:
            raise ValueError(f"gzip data does not inflate: {exc}") from None
        if inflater.unconsumed_tail or len(out) > declared:
            raise ValueError(f"inflates past the {declared} bytes it declares (stopped there)")
    else:
        raise ValueError(f"compression type {kind} is not one the reader inflates (none, gzip)")
    if len(out) != declared:
        raise ValueError(f"inflates to {len(out)} bytes, not the {declared} it declares")
    return out


def _records(data: bytes, count: int) -> list[bytes]:
    records, pos = [], 0
    for _ in range(count):
        size = int.from_bytes(data[pos:pos + 4], "big")
        if pos + 4 + size > len(data):
            raise ValueError("a record runs past the end of its batch")
        records.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    return records


class SafeConsumer(Consumer):
    """rstream's Consumer, walking each chunk with ``chunk_entries`` (use ``decoder=decode_entry``)."""

    @staticmethod
    def _filter_messages(frame, subscriber, filter_value=None):
        # rstream's own arithmetic: the chunk's first offset, one per record; entries before the
        # subscription's start offset are skipped; the next chunk is expected after this one.
        start = subscriber.offset if subscriber.offset_type is OffsetType.OFFSET else -1
        offset = frame.chunk_first_offset - 1
        for record in chunk_entries(frame.data, frame.num_entries):
            offset += 1
            if offset >= start:
                yield offset, record  # no filtering: the kit subscribes without a filter
        subscriber.offset = frame.chunk_first_offset + frame.num_entries
