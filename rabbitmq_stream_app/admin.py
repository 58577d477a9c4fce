"""RabbitMQ streams as the harness sees them: declare, delete, publish, the tail, stored offsets, reading a stream.

The driver side of ``RabbitMQStreamStack``. rstream is asyncio; the harness is
not, so one event loop runs in a daemon thread and every call here is a
coroutine handed to it (``_call``). Every read is of the broker's own view:

* the tail of each stream: a watcher subscribed at the last chunk of every
  stream of the run keeps the highest offset it was sent (3.10 has no stream
  stats command; the management API's message count includes offset-tracking
  entries and is not an offset);
* stored offsets: ``query_offset`` per reference (the broker's offset store);
* who reads: the stream management plugin's ``/api/stream/consumers``.

Nothing here stores an offset: reading the dead-letter stream or replaying
the log is done by a reader without a reference.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from rstream import (
    AMQPMessage,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetNotFound,
    OffsetType,
    StreamDoesNotExist,
)
from rstream.superstream_producer import SuperStreamProducer

from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for
from queuekit.stacks.rabbitmq import Management
from queuekit.stacks.reset import Purged

from . import clients, partitions
from .entries import Entry, decode_entry

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0
PROBE_S = 1.0  # how long a tail probe waits for the last chunk of a stream nobody watches
BATCH = 500  # messages per publish frame (far below the 1 MiB frame_max for the kit's envelopes)


class StreamAdmin:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mgmt = Management(settings)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="rabbitmq-stream-driver", daemon=True).start()
        self._producer: Any = None
        self._offsets: Any = None  # a consumer without subscriptions: query_offset only
        self._watcher: Any = None
        self.tails: dict[str, int] = {}  # stream -> highest offset the watcher was sent (-1: empty)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # -- streams ------------------------------------------------------------------------------
    def declare(self, names: Sequence[str], super_streams: Mapping[str, int] | None = None) -> None:
        """Create the super streams (``{name: partitions}``, RabbitMQ >= 3.11) and the streams (an existing one
        is kept), and watch the tails of the streams and of every partition."""
        try:
            for name, count in (super_streams or {}).items():
                self._call(self._super_stream(name, count, create=True))
            self._call(self._declare(list(names), [p for n, c in (super_streams or {}).items()
                                                   for p in partitions.names(n, c)]))
        except OSError as exc:
            where = f"{clients.endpoint(self.settings)['host']}:{self.settings.rabbit_stream_port}"
            raise KitError(f"RabbitMQ's stream port {where} is not answering ({exc})",
                           "start the kit's RabbitMQ (queuekit up rabbitmq), or enable the rabbitmq_stream plugin "
                           "on yours") from exc

    async def _declare(self, names: list[str], created: list[str]) -> None:
        """``names`` created here; ``created``: partitions the super stream command made (watched only)."""
        producer = await self._get_producer()
        for name in names:
            await producer.create_stream(name, exists_ok=True)  # no retention set: the log keeps everything
        if self._watcher is None:
            self._watcher = clients.consumer(self.settings, "stream-tail-watcher", recover=True)
        for name in [*names, *created]:
            if name not in self.tails:
                self.tails[name] = -1
                await self._watcher.subscribe(name, self._on_tail, offset_specification=ConsumerOffsetSpecification(
                    OffsetType.LAST, None))  # the last chunk, then every new one

    async def _super_stream(self, name: str, count: int, create: bool) -> None:
        """rstream's ``SuperStreamProducer`` as the client of the super stream commands (3.13+ protocol): the
        exchange ``name`` and its partitions ``<name>-<i>``, bound by the keys ``"<i>"``."""
        client = SuperStreamProducer(**clients.endpoint(self.settings), super_stream=name,
                                     routing_extractor=partitions.routing_key, connection_name="stream-admin")
        try:
            if create:
                await client.create_super_stream(name, count, exists_ok=True)
            else:
                await client.delete_super_stream(name, missing_ok=True)
        finally:
            await client.close()

    def delete_super_streams(self, names: Sequence[str], purged: Purged) -> None:
        """The kit's super streams by name: the exchange and every partition the broker lists for it; those that
        existed (a partition ``<name>-<i>`` on the broker) noted in ``purged``."""
        present = {q.name for q in self.mgmt.queues()}
        for name in names:
            parts = [p for p in present if p.startswith(f"{name}-") and p[len(name) + 1:].isdigit()]
            self._call(self._super_stream(name, 0, create=False))
            if parts:
                purged.deleted("super stream", [f"{name} ({len(parts)} partitions)"])

    async def _on_tail(self, _msg: bytes, ctx: MessageContext) -> None:
        self.tails[ctx.stream] = max(self.tails.get(ctx.stream, -1), ctx.offset)

    def delete(self, names: list[str], dead_letter_streams: list[str], purged: Purged) -> None:
        """These streams, by name (with their stored offsets and producer sequences), never a foreign one
        sharing the prefix; what existed, and the entries each dead-letter stream held, noted in ``purged``."""
        self.mgmt.delete_kit_queues(names, dead_letter_streams, purged, kind="stream")
        wait_for(lambda: not {q.name for q in self.mgmt.queues()} & set(names), timeout=30,
                 what="the kit's streams deleted")

    def close(self) -> None:
        self._call(self._close())
        self.tails.clear()

    async def _close(self) -> None:
        for attr in ("_watcher", "_producer", "_offsets"):
            client = getattr(self, attr)
            setattr(self, attr, None)
            if client is not None:
                try:
                    await asyncio.wait_for(client.close(), 10)
                except Exception:  # noqa: BLE001 - already gone (broker restarted)
                    pass

    # -- producing ------------------------------------------------------------------------------
    async def _get_producer(self):
        if self._producer is None:
            self._producer = clients.producer(self.settings, "stream-publisher")
        return self._producer

    def publish(self, stream: str, bodies: Sequence[bytes], timeout: float = 60.0,
                keys: Sequence[str] | None = None, partitioned: Sequence[str] = ()) -> tuple[int, int]:
        """Append ``bodies`` with confirms: (confirmed, refused). After a dropped connection the same messages
        are sent again with the same publishing ids under the same producer name: the broker drops the ones
        it already has (deduplication), so a retry never duplicates. With ``partitioned`` (a super stream's
        partitions) each body goes to the partition of its key (``partitions.route``)."""
        messages = [AMQPMessage(body=body) for body in bodies]
        if partitioned:
            targets = self._call(_routed(list(keys or []), list(partitioned)))
        else:
            targets = [stream] * len(messages)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._call(self._publish(targets, messages), timeout=timeout)
            except Exception:
                self._call(self._drop_producer())
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)  # the broker is restarting: try again on a new connection

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.close(), 5)
            except Exception:  # noqa: BLE001 - the connection is already gone
                pass

    async def _publish(self, targets: list[str], messages: list[AMQPMessage]) -> tuple[int, int]:
        producer = await self._get_producer()
        statuses: list = []
        every = asyncio.Event()

        def on_confirm(status) -> None:  # the broker's answer per publishing id
            statuses.append(status)
            if len(statuses) >= len(messages):
                every.set()

        by_stream: dict[str, list[AMQPMessage]] = {}
        for target, message in zip(targets, messages):
            by_stream.setdefault(target, []).append(message)  # in publish order within each stream / partition
        for stream, batch in by_stream.items():
            for start in range(0, len(batch), BATCH):
                # a named producer: ids continue from what the broker has for this name and stream (dedup on a resend)
                await producer.send_batch(stream, batch[start:start + BATCH], publisher_name="stream.publisher",
                                          on_publish_confirm=on_confirm)
        if messages:
            await asyncio.wait_for(every.wait(), 30)
        confirmed = sum(1 for s in statuses if s.is_confirmed)
        return confirmed, len(messages) - confirmed

    # -- the broker's view ------------------------------------------------------------------------
    def stored_offset(self, stream: str, reference: str) -> int | None:
        return self._call(self._stored_offset(stream, reference))

    async def _stored_offset(self, stream: str, reference: str) -> int | None:
        if self._offsets is None:
            self._offsets = clients.consumer(self.settings, "stream-offset-reader")
        try:
            return await self._offsets.query_offset(stream, reference)
        except OffsetNotFound:
            return None

    def consumers(self) -> list[dict]:
        """The stream management plugin's consumers: queue, properties (our service and worker), offset, lag."""
        r = self.mgmt.http.get("/stream/consumers")
        r.raise_for_status()
        return r.json()

    def read(self, stream: str, timeout: float = 30.0) -> list[tuple[int, AMQPMessage]]:
        """Every message of ``stream`` up to its tail now, by a reader with no reference (stores nothing)."""
        tail = self.tails[stream] if stream in self.tails else self._call(self._probe_tail(stream))
        return self._call(self._read(stream, tail, timeout), timeout=timeout + 10) if tail >= 0 else []

    async def _probe_tail(self, stream: str, wait_s: float = PROBE_S) -> int:
        """A stream nobody watches (no run started): the last chunk's highest offset, -1 if none comes."""
        seen = [-1]

        async def on_message(_msg: bytes, ctx: MessageContext) -> None:
            seen.append(ctx.offset)

        probe = clients.consumer(self.settings, "stream-tail-probe")
        try:
            await probe.subscribe(stream, on_message, offset_specification=ConsumerOffsetSpecification(OffsetType.LAST,
                                                                                                       None))
            await asyncio.sleep(wait_s)  # the last chunk comes at once if there is one; an empty stream sends nothing
        except StreamDoesNotExist:
            pass
        finally:
            await asyncio.wait_for(probe.close(), 10)
        return max(seen)

    async def _read(self, stream: str, tail: int, timeout: float) -> list[tuple[int, AMQPMessage]]:
        got: list[tuple[int, AMQPMessage]] = []
        reached = asyncio.Event()

        async def on_message(entry: Entry, ctx: MessageContext) -> None:
            if ctx.offset <= tail:  # an undecodable entry (anyone may append to any stream) is read as its bytes
                got.append((ctx.offset, entry.message if entry.message is not None else AMQPMessage(
                    body=entry.raw, application_properties={"reason": f"undecodable entry: {entry.problem}"})))
            if ctx.offset >= tail:
                reached.set()

        reader = clients.consumer(self.settings, "stream-reader")
        try:
            await reader.subscribe(stream, on_message, decoder=decode_entry,
                                   offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST, None))
            await asyncio.wait_for(reached.wait(), timeout)
        finally:
            await asyncio.wait_for(reader.close(), 10)
        return got


async def _routed(keys: list[str], names: list[str]) -> list[str]:
    return [await partitions.route(key, names) for key in keys]
