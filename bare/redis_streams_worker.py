"""A plain redis-py consumer group member per slot: XREADGROUP, work, XACK after the work.

``python -m bare.redis_streams_worker STREAM GROUP``. ``concurrency`` threads per process, each its own
client and consumer name (as the kit's stack runs its slots), ``COUNT = prefetch`` entries per read;
at-least-once as ``redis_streams_app/acks.py``: XACK after the work (no MULTI here: there is nothing
to write beside it). No XAUTOCLAIM, no retries, no dead letters: the bench's work never fails.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from queuekit.core.config import Settings
from queuekit.core.options import options_from_env
from queuekit.core.redis_client import connect
from queuekit.core.redis_keys import KeySpace

from . import Backlog
from .work import work

BLOCK_MS = 500


def consume(settings: Settings, stream: str, group: str, name: str, count: int, stop: threading.Event) -> None:
    client = connect(settings)
    while not stop.is_set():
        reply = client.xreadgroup(group, name, {stream: ">"}, count=count, block=BLOCK_MS)
        for entry_id, fields in (reply[0][1] if reply else []):
            work(fields[b"envelope"])
            client.xack(stream, group, entry_id)  # after the work: a crash before this leaves it pending
    client.close()


def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], topic: str,
                    partitions: int) -> Backlog:
    """A stream (under the install's Redis prefix) with a group from id 0, filled by pipelined XADDs of 1,000."""
    client = connect(config)
    space = KeySpace(client, config.redis_prefix)
    stream = space.key("bare", topic)
    space.record(stream)
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    for i in range(0, len(payloads), 1000):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[i:i + 1000]:
            pipe.xadd(stream, {b"envelope": payload.encode()})
        pipe.execute()  # raises on the first refused XADD

    def cleanup() -> None:
        client.unlink(stream)
        client.srem(space.registry, stream)
        client.close()

    return Backlog(["-m", "bare.redis_streams_worker", stream, "g"], cleanup)


if __name__ == "__main__":
    stream, group = sys.argv[1], sys.argv[2]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings, options = Settings.from_env(), options_from_env()
    threads = [threading.Thread(target=consume, args=(settings, stream, group, f"{os.getpid()}.{i}",
                                                      options.prefetch, stop))
               for i in range(options.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
