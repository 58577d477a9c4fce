"""Entries straight onto the stream, as any producer could append them (hostile inputs).

``RawPublisher(stack).send(item)`` publishes ``item.payload`` to the workload's entry stream (on RabbitMQ
>= 3.11 its super stream's first partition: hostile bytes have no key to route by) through the
default exchange with pika (AMQP 0.9.1), with publisher confirms; RabbitMQ stores it as a stream entry
like any other. With the corpus's frame (``queuekit.suite.hostile``) it writes with rstream on the stream
protocol instead, which stores bytes as they are given:

* ``entries``: raw entries (not necessarily AMQP 1.0), appended in one batch (one chunk, as the broker
  writes a publish frame together), each confirmed;
* ``sub_batch``: one sub-entry batch of ``count`` records whose data are the given bytes, under the
  given compression type and declared inflated size (a compression bomb, or an honest gzip batch).
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rstream import CompressionType, ConfirmationStatus
from rstream.compression import ICompressionCodec, StreamCompressionCodecs

from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import PikaWire, frame_spec

from . import clients, topology
from .partitions import partitioned

CONFIRM_S = 30


class RawPublisher(PikaWire):
    def send(self, item: Hostile, workload: str = "signup") -> None:
        spec = frame_spec(item, "rabbitmq_stream")
        stream = topology.raw_target(workload, partitioned(self.stack.settings))  # >= 3.11: the first partition
        if "entries" in spec:
            asyncio.run(self._append(stream, spec["entries"]))
        elif "sub_batch" in spec:
            asyncio.run(self._append_batch(stream, **spec["sub_batch"]))
        else:
            self.publish(stream, item.payload)

    async def _append(self, stream: str, entries: Sequence[bytes]) -> None:
        producer = clients.producer(self.stack.settings, "hostile-raw")
        confirmed: list[ConfirmationStatus] = []
        try:
            await producer.start()
            await producer.send_batch(stream, list(entries), on_publish_confirm=confirmed.append)
            await _confirmed(confirmed, len(entries))
        finally:
            await producer.close()

    async def _append_batch(self, stream: str, data: bytes, count: int, declared: int, kind: int = 1) -> None:
        """One sub-entry batch carrying ``data`` as it is (rstream compresses through a codec: this one
        hands over prepared bytes and the declared sizes, as any other client could)."""
        prepared = _Prepared(data, count, declared, kind)
        codecs = StreamCompressionCodecs.available_compress_codecs
        real = codecs.pop(CompressionType(kind), None)  # rstream ships gzip only: none for the others
        StreamCompressionCodecs.register_codec(CompressionType(kind), prepared)
        producer = clients.producer(self.stack.settings, "hostile-raw")
        confirmed: list[ConfirmationStatus] = []
        try:
            await producer.start()
            await producer.send_sub_entry(stream, [b"-"] * count, CompressionType(kind),
                                          on_publish_confirm=confirmed.append)
            await _confirmed(confirmed, 1)
        finally:
            codecs.pop(CompressionType(kind), None)
            if real is not None:
                StreamCompressionCodecs.register_codec(CompressionType(kind), real)
            await producer.close()


async def _confirmed(confirmed: list[ConfirmationStatus], n: int) -> None:
    for _ in range(CONFIRM_S * 20):
        if len(confirmed) >= n:
            break
        await asyncio.sleep(0.05)  # polls the confirm callback's list against the deadline below
    else:
        raise TimeoutError(f"{n - len(confirmed)} of {n} stream appends not confirmed within {CONFIRM_S} s")
    refused = [c for c in confirmed if not c.is_confirmed]
    if refused:
        raise RuntimeError(f"the broker refused {len(refused)} appends: {refused[0].response_code}")


class _Prepared(ICompressionCodec):
    def __init__(self, data: bytes, count: int, declared: int, kind: int):
        self._data, self._count, self._declared, self._kind = data, count, declared, kind

    def compress(self, messages) -> None:
        pass  # the data were prepared by the corpus

    def uncompress(self, compressed_data: bytes, uncompressed_data_size: int) -> bytes:
        raise NotImplementedError("a publisher only")

    def compressed_size(self) -> int:
        return len(self._data)

    def uncompressed_size(self) -> int:
        return self._declared

    def messages_count(self) -> int:
        return self._count

    def data(self) -> bytes:
        return self._data

    def compression_type(self) -> int:
        return self._kind
