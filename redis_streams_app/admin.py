"""Redis Streams as the harness sees it: group lag, consumers, publishing, reading a stream.

Every call is a read of the broker's own view (XINFO GROUPS / CONSUMERS, XPENDING, XRANGE) or an
append the harness makes as a producer; nothing here consumes on a worker's behalf. The client is
the stack's ``RedisParts`` client (``queuekit.stacks.redis``: the primary, through Sentinel in the
cluster topology).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from queuekit.core.envelope import Envelope, encode
from queuekit.core.errors import KitError
from queuekit.stacks.base import PublishReport

from .topology import FIELD, MAXLEN

PIPELINE = 1000  # XADDs per round trip when publishing
READ_BATCH = 1000  # entries per XRANGE / XREADGROUP when reading a stream through


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class StreamAdmin:
    """``LogAdmin`` and ``LogPublisher`` of ``queuekit.stacks.log`` on Redis Streams."""

    def __init__(self, client_of):
        self._client_of = client_of  # () -> the redis-py client (made on first use, renewed after a reset)

    @property
    def client(self):
        return self._client_of()

    # -- the group's view ----------------------------------------------------------------------
    def groups(self, stream: str) -> dict[str, dict]:
        """XINFO GROUPS: name -> {pending, lag, last-delivered-id, entries-read, consumers}; none for a missing stream."""
        import redis

        try:
            return {text(g["name"]): g for g in self.client.xinfo_groups(stream)}
        except redis.ResponseError as exc:  # "no such key": not declared (reset, never started)
            if "no such key" in str(exc).lower():
                return {}
            raise

    def lag(self, subscriptions: Sequence[tuple[str, str]]) -> dict[str, int]:
        """Per group: entries not yet delivered to it (XINFO GROUPS ``lag``, Redis 7) plus those delivered and not
        acknowledged (``pending``). Where Redis cannot tell the lag (after an XDEL or a trim past the group's
        position, ``lag`` is nil) the entries after its last-delivered id are counted."""
        out = {}
        for group, stream in subscriptions:
            info = self.groups(stream).get(group)
            if info is None:
                continue
            lag = info.get("lag")
            if lag is None:
                lag = len(self.client.xrange(stream, "(" + text(info["last-delivered-id"]), "+"))
            out[group] = int(lag) + int(info["pending"])
        return out

    def groups_ready(self, expected: dict[str, tuple[str, int]]) -> bool:
        """group -> (stream, consumers): each group knows at least that many consumers. (A dead consumer stays
        listed until deleted, so the stack checks the live workers' consumer names instead: ``consumers_ready``.)"""
        return all(len(self.consumers(stream, group)) >= n for group, (stream, n) in expected.items())

    def describe_groups(self, groups: Sequence[str]) -> str:
        return "; ".join(groups)  # the stack's describe_consumers names the missing consumers instead

    def consumers(self, stream: str, group: str) -> list[dict]:
        import redis

        try:
            return self.client.xinfo_consumers(stream, group)
        except redis.ResponseError:
            return []

    def pending_per_consumer(self, stream: str, group: str) -> dict[str, int]:
        """XPENDING's summary: entries delivered to each consumer and not yet acknowledged."""
        try:
            summary = self.client.xpending(stream, group)
        except Exception:  # noqa: BLE001 - no stream / group yet: nothing pending
            return {}
        return {text(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []}

    # -- producing -----------------------------------------------------------------------------
    def publish(self, stream: str, envelopes: Sequence[Envelope]) -> PublishReport:
        """XADD each envelope (``MAXLEN ~``), pipelined; Redis's reply (an entry id or an error) per entry is the
        confirmation. With ``appendfsync everysec`` a confirmed entry can still be lost in the last second before a
        crash of the server (docs/redis.md)."""
        ok = failed = 0
        t0 = time.monotonic()
        for i in range(0, len(envelopes), PIPELINE):
            pipe = self.client.pipeline(transaction=False)
            for env in envelopes[i:i + PIPELINE]:
                pipe.xadd(stream, {FIELD: encode(env)}, maxlen=MAXLEN, approximate=True)
            for reply in pipe.execute(raise_on_error=False):
                if isinstance(reply, Exception):
                    failed += 1
                else:
                    ok += 1
        return PublishReport(confirmed=ok, refused=failed, seconds=time.monotonic() - t0, broker_messages=ok)

    def publish_raw(self, stream: str, payload: bytes) -> None:
        try:
            self.client.xadd(stream, {FIELD: payload}, maxlen=MAXLEN, approximate=True)
        except Exception as exc:
            raise KitError(f"Redis refused the raw entry on {stream}: {exc}") from exc

    def close(self) -> None:
        return None  # the client belongs to RedisParts

    # -- reading without consuming ----------------------------------------------------------------
    def read(self, stream: str) -> list[tuple[bytes, dict]]:
        """Every entry ``stream`` holds now, in id order (XRANGE: no group, no position moved)."""
        entries: list[tuple[bytes, dict]] = []
        start = "-"
        while True:
            batch = self.client.xrange(stream, start, "+", count=READ_BATCH)
            entries += batch
            if len(batch) < READ_BATCH:
                return entries
            start = "(" + text(batch[-1][0])

    def read_tail(self, streams: Iterable[str], n: int = 5) -> list[tuple[bytes, dict]]:
        """The latest ``n`` entries over ``streams``, oldest first (XREVRANGE: nothing consumed)."""
        entries = [e for s in streams for e in self.client.xrevrange(s, count=n)]
        return sorted(entries, key=lambda e: tuple(int(p) for p in text(e[0]).split("-")))[-n:]

    def replay(self, stream: str, timeout: float) -> int:
        """A brand-new group from id 0 reads the stream through (NOACK: it keeps no PEL), then is destroyed."""
        group = f"replay-{uuid.uuid4().hex[:8]}"  # inside the stream's key: purge deletes it with the stream
        if not self.client.exists(stream):
            return 0
        self.client.xgroup_create(stream, group, id="0")
        read, deadline = 0, time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                reply = self.client.xreadgroup(group, "reader", {stream: ">"}, count=READ_BATCH, noack=True)
                batch = reply[0][1] if reply else []
                if not batch:
                    return read
                read += len(batch)
            return read
        finally:
            self.client.xgroup_destroy(stream, group)
