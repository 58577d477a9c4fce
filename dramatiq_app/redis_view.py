"""RedisBroker's keys read from outside, without consuming anything (the dramatiq_redis stack and its dashboard card).

Key layout under the namespace ``<ns>`` (``redis_broker.namespace``, e.g. ``qk:dramatiq_redis``):

* ``<ns>:Q`` list of ready ids; ``<ns>:Q.msgs`` hash id -> message, ready AND fetched (deleted on ack);
* ``<ns>:Q.DQ`` / ``Q.DQ.msgs``: the same for delayed messages (retries, ``send_with_options(delay=)``);
* ``<ns>:Q.XQ`` sorted set of dead ids by time, ``Q.XQ.msgs`` their messages, ``Q.XQ.reasons`` the kit's;
* ``<ns>:__acks__.<broker id>.Q``: the ids one worker process fetched and has not acked;
* ``<ns>:__heartbeats__``: broker id -> the millisecond time of its last command.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from queuekit.core.redis_keys import glob_escape

from .redis_broker import reasons_key


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class RedisView:
    client: Any  # a redis-py client of the primary
    ns: str

    def unsettled(self, queues: list[str]) -> int:
        """Messages enqueued and not yet acked or dead-lettered: ready, fetched or delayed (what qsize counts)."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.hlen(f"{self.ns}:{queue}.msgs")
        return sum(pipe.execute())

    def ready(self, queues: list[str]) -> int:
        """Ids waiting in the queues' lists: what a new consumer would fetch."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(f"{self.ns}:{queue}")
        return sum(pipe.execute())

    def ack_sets(self) -> list[tuple[str, str, int]]:
        """(worker name, queue, ids fetched and not acked) per ack set; the worker is the broker id before its ``@``."""
        prefix = f"{self.ns}:__acks__."
        keys = [_text(k) for k in self.client.scan_iter(match=glob_escape(prefix) + "*", count=1000)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.scard(key)
        out = []
        for key, n in zip(keys, pipe.execute() if keys else [], strict=True):
            worker, _, rest = key[len(prefix):].partition("@")
            out.append((worker, rest.partition(".")[2], n))  # rest: <8 hex>.<queue>
        return out

    def held(self) -> dict[str, int]:
        """Fetched-not-acked messages per worker name, over every queue."""
        held: dict[str, int] = {}
        for worker, _, n in self.ack_sets():
            held[worker] = held.get(worker, 0) + n
        return held

    def live_workers(self, within_ms: int) -> set[str]:
        """Worker names whose broker stamped a heartbeat in the last ``within_ms`` (any of its consumers)."""
        since = time.time() * 1000 - within_ms
        ids = self.client.zrangebyscore(f"{self.ns}:__heartbeats__", since, "+inf")
        return {_text(i).split("@", 1)[0] for i in ids}

    def dead(self, queue: str) -> list[tuple[bytes, str]]:
        """(message, reason) of each dead letter of ``queue``, oldest first; the reason is the kit's, if any."""
        xq = f"{self.ns}:{queue}.XQ"
        ids = self.client.zrange(xq, 0, -1)
        if not ids:
            return []
        bodies = self.client.hmget(f"{xq}.msgs", ids)
        reasons = self.client.hmget(reasons_key(self.ns, queue), ids)
        return [(body, _text(reason) if reason else "") for body, reason in zip(bodies, reasons, strict=True)
                if body is not None]

    def dead_count(self, queues: list[str]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(f"{self.ns}:{queue}.XQ")
        return sum(pipe.execute())
