"""What every stack on Redis does the same way: one client of the primary, the install's keyspace, purge by name.

The four Redis stacks (celery_redis, dramatiq_redis, rq, redis_streams) each keep their own
framework's key layout; what they share is here once:

* ``RedisParts.client``: a redis-py client of the primary (``core/redis_client.connect``: the
  single node, an external URL, or the cluster topology's primary found through Sentinel);
* ``RedisParts.keys``: the stack's ``KeySpace`` (``core/redis_keys.py``): every key it makes is
  under ``Settings.redis_prefix`` + ``<stack>:`` (``qk:celery_redis:…``) and recorded there, so one
  stack's purge never touches another's keys while compare runs them side by side; ``purge``
  deletes by name, never FLUSHDB;
* ``RedisParts.purge(names)``: the stack's own names (and the recorded ones), plus, with
  ``sweep``, unrecorded keys under the prefix that the framework made on its own (a reset of
  every workload);
* ``RedisParts.delete(names, purged)``: only these names (a reset of some workloads), noted in
  ``purged`` when they existed.

A framework whose keys cannot carry the prefix (RQ names its keys ``rq:…``) keeps to a database
of its own instead, and says so in its stack's docstring.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from queuekit.core.config import Settings
from queuekit.core.redis_client import connect
from queuekit.core.redis_keys import KeySpace

from .reset import Purged


class RedisParts:
    """The harness's side of one Redis stack: a client made on first use, closed by ``close``."""

    def __init__(self, settings: Settings, namespace: str, db: int | None = None):
        self.settings = settings
        self.namespace = namespace  # the stack's name: its keys are <install prefix><namespace>:…
        self.db = db  # None: the URL's database (0 on the kit's own server)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.settings, **({"db": self.db} if self.db is not None else {}))
        return self._client

    @property
    def prefix(self) -> str:
        return f"{self.settings.redis_prefix}{self.namespace}:"

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.client, self.prefix)

    def key(self, *parts: str) -> str:
        return self.keys.key(*parts)

    def purge(self, names: Iterable[str] = (), sweep: bool = True) -> int:
        """Delete ``names`` (the stack's own, all under the prefix), the recorded names and, with ``sweep``,
        unrecorded keys under the prefix; never a key outside it. Returns how many existed."""
        keys = self.keys
        own = [n for n in names if keys.owns(n)]
        if own:
            keys.record(*own)
        return keys.cleanup(sweep=sweep)

    def delete(self, names: Iterable[str], purged: Purged, kind: str = "key") -> None:
        """Delete exactly ``names`` (those under the prefix; never a key outside it) and take them off the
        record; note in ``purged`` those that existed."""
        keys = self.keys
        own = list(dict.fromkeys(n for n in names if keys.owns(n)))
        if not own:
            return
        pipe = self.client.pipeline(transaction=False)
        for name in own:
            pipe.exists(name)
        existed = [name for name, n in zip(own, pipe.execute(), strict=True) if n]
        for at in range(0, len(own), 500):
            self.client.unlink(*own[at:at + 500])  # by name
            self.client.srem(keys.registry, *own[at:at + 500])
        purged.deleted(kind, existed)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
