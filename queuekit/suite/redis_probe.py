"""The raw redis-py probes for the Redis cluster, through Sentinel, optionally with ``WAIT 1``.

``structure="stream"``: XADD, XREADGROUP + XACK (Redis Streams' consumer groups).
``structure="list"``: LPUSH, LMOVE into a processing list + LREM after the effect
(the "reliable queue" pattern: the structure Celery, Dramatiq and RQ use on Redis).

A record is *confirmed* when XADD / LPUSH returned: the primary has it
(in memory and in its AOF's page cache) and has acknowledged it, nothing more.
Replication is asynchronous, so a failover may promote a replica that never
received the last acknowledged writes. With ``wait=1`` a record is confirmed
only once ``WAIT 1`` says a replica acknowledged it too (a WAIT that times out
makes the record *failed*: the client cannot know); WAIT is not consensus,
so it narrows the window rather than closing it (Redis's WAIT documentation).

A stream keeps consumed entries, so its final read returns them too
(``keeps_consumed``) and the row counts *vanished*: confirmed records missing
from the stream after the heal, consumed or not. That is the broker's own
loss, which ``lost`` (never consumed, and gone) hides when the consumer read a
record from the old primary before the failover discarded it. A list forgets
what was consumed: the list probe counts ``lost`` only.
"""
from __future__ import annotations

import json
import threading
import uuid

from queuekit.brokers.faults import redis_primary
from queuekit.core.config import Settings
from queuekit.core.redis_client import connect
from queuekit.core.redis_keys import KeySpace
from queuekit.core.waiting import wait_for

from .faults import Recorder
from .probes import _paced

GROUP = "readers"
WAIT_MS = 1000  # how long WAIT 1 may block for a replica's acknowledgement before the record counts as failed
BATCH = 50  # entries per XREADGROUP: the consumer's prefetch


def _no_retry():
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt per command: redis-py retries a command whose reply was lost by default, and a
    # retried XADD that had landed is a second entry; the probe counts what the broker did, not the client.
    return Retry(NoBackoff(), 0)


class RedisProbe:
    broker = "redis"

    def __init__(self, settings: Settings, wait: int = 0, rate: float = 100.0, structure: str = "stream"):
        if structure not in ("stream", "list"):
            raise ValueError(f"structure {structure!r}: use stream or list")
        self.settings, self.wait, self.rate, self.structure = settings, wait, rate, structure
        verb = "XADD" if structure == "stream" else "LPUSH"
        self.variant = f"{verb} + WAIT 1" if wait else f"{verb} (async replication)"
        self.keeps_consumed = structure == "stream"  # a stream keeps what was read: its final read sees it
        self.keys = KeySpace(self._client(), settings.redis_prefix)
        self.stream = self.keys.key("cluster", uuid.uuid4().hex[:8])  # a fresh stream / list per cell
        self.processing = self.stream + ":processing"  # the list probe's records being worked on
        self.done = threading.Event()
        self.consumer_thread: threading.Thread | None = None
        self.rec: Recorder | None = None

    def _client(self):
        return connect(self.settings, retry=_no_retry())

    def setup(self) -> None:
        client = self._client()
        self.keys.record(self.stream, self.processing)  # before they exist: cleanup finds them by name
        if self.structure == "stream":
            client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
            client.wait(2, 5000)  # the group is on the replicas before any fault (a new primary knows it)
        else:
            client.ping()  # a list needs no declaration: the primary answers

    def leader(self) -> int:
        return redis_primary(self.settings)

    def start(self, rec: Recorder, stop: threading.Event) -> list[threading.Thread]:
        import redis

        self.rec = rec

        def produce() -> None:
            client = self._client()
            for key, seq in _paced(self.rate, stop):
                rec.on_sent(key, seq)
                try:
                    body = json.dumps({"key": key, "seq": seq})
                    if self.structure == "stream":
                        client.xadd(self.stream, {"record": body})
                    else:
                        client.lpush(self.stream, body)
                    if self.wait and client.wait(self.wait, WAIT_MS) < self.wait:
                        # The primary has it, no replica said so in time: neither confirmed nor refused.
                        rec.on_failed(key, seq, "WAIT 1 timed out")
                        rec.note("WAIT 1 timed out: no replica acknowledged")
                        continue
                except (redis.RedisError, OSError) as exc:  # indeterminate: it may have landed
                    rec.on_failed(key, seq, type(exc).__name__)
                    rec.note(f"publish {type(exc).__name__}")
                    stop.wait(0.1)  # the next command asks the Sentinels for the primary again
                    continue
                rec.on_confirmed(key, seq)

        def consume_list() -> None:
            client = self._client()
            backlog = True  # (re)connected: first what this consumer took and never finished
            while not self.done.is_set():
                try:
                    if backlog:
                        for body in client.lrange(self.processing, 0, -1):
                            record = json.loads(body)
                            rec.on_effect(record["key"], int(record["seq"]))
                            client.lrem(self.processing, 1, body)
                        backlog = False
                    # Moved, not popped: a consumer that dies holding it leaves it in the processing list.
                    body = client.blmove(self.stream, self.processing, 0.2, "RIGHT", "LEFT")
                    if body is None:
                        continue
                    record = json.loads(body)
                    rec.on_effect(record["key"], int(record["seq"]))
                    client.lrem(self.processing, 1, body)  # after the effect: at-least-once
                except (redis.RedisError, OSError) as exc:
                    rec.note(f"consumer {type(exc).__name__}")
                    backlog = True
                    self.done.wait(0.2)

        def consume() -> None:
            client = self._client()
            backlog = True  # (re)connected: first this consumer's own pending entries (delivered, never acked)
            while not self.done.is_set():
                try:
                    got = client.xreadgroup(GROUP, "c1", {self.stream: "0" if backlog else ">"}, count=BATCH,
                                            block=None if backlog else 200)
                    entries = got[0][1] if got else []
                    if backlog and not entries:
                        backlog = False
                    for entry_id, fields in entries:
                        record = json.loads(fields[b"record"])
                        rec.on_effect(record["key"], int(record["seq"]))
                        client.xack(self.stream, GROUP, entry_id)  # after the effect: at-least-once
                except (redis.RedisError, OSError) as exc:
                    rec.note(f"consumer {type(exc).__name__}")
                    backlog = True
                    self.done.wait(0.2)

        target = consume if self.structure == "stream" else consume_list
        self.consumer_thread = threading.Thread(target=target, name="probe-consumer", daemon=True)
        self.consumer_thread.start()
        producer_thread = threading.Thread(target=produce, name="probe-producer", daemon=True)
        producer_thread.start()
        return [producer_thread]

    def final_read(self) -> set[tuple[str, int]]:
        """Every record Redis holds after the heal, from the primary the Sentinels name: the whole stream
        (consumed entries too: a stream keeps them), or what the list and its processing list still hold."""
        self.done.set()
        if self.consumer_thread:
            self.consumer_thread.join(timeout=30)

        def read_list() -> tuple[set[tuple[str, int]]]:
            client = self._client()
            bodies = client.lrange(self.stream, 0, -1) + client.lrange(self.processing, 0, -1)
            return ({(r["key"], int(r["seq"])) for r in map(json.loads, bodies)},)

        def read() -> tuple[set[tuple[str, int]]]:
            client, found, start = self._client(), set(), "-"
            while True:
                page = client.xrange(self.stream, min=start, count=1000)
                for _entry_id, fields in page:
                    record = json.loads(fields[b"record"])
                    found.add((record["key"], int(record["seq"])))
                if len(page) < 1000:
                    return (found,)
                start = "(" + page[-1][0].decode()

        return wait_for(read if self.structure == "stream" else read_list, timeout=60,
                        what=f"the primary to serve {self.stream} for the final read")[0]

    def close(self) -> None:
        self.done.set()
        if self.consumer_thread:
            self.consumer_thread.join(timeout=30)
        try:
            self.keys.cleanup()  # the stream, by name
        except Exception:  # noqa: BLE001 - a cell's result stands even if the cleanup could not reach Redis
            pass
