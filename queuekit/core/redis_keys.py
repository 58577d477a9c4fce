"""The kit's keys on a Redis it shares: one prefix per install, every key recorded, deleted by name.

A Redis the kit did not start (QUEUEKIT_REDIS_URL) holds other people's keys
in the same keyspace: there is no vhost to keep to. The rules, on every Redis:

* every key the kit makes is named ``Settings.redis_prefix`` + a name
  (``qk:<install id>:`` on an external server), and ``record`` refuses one that is not;
* every name the kit makes is recorded in one set, ``<prefix>keys``, when it is made
  (in Redis itself, so workers and the harness record into the same list);
* cleanup deletes the recorded names (UNLINK, by name) and takes them off the record; the optional
  ``sweep`` also removes unrecorded keys *under the prefix* that a framework made on its
  own (found with SCAN MATCH of the escaped prefix: never a key outside it);
* never FLUSHALL or FLUSHDB (the kit's own Redis denies its user both: brokers/redis.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REGISTRY = "keys"  # <prefix>keys: the set of every name the kit made
BATCH = 500  # names per UNLINK


def glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH / KEYS pattern (Redis globs: * ? [ ] and backslash)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class KeySpace:
    """The kit's part of one Redis keyspace: ``client`` is a redis-py client, ``prefix`` the install's."""

    client: Any  # a redis-py client (redis.Redis, or a Sentinel's master_for)
    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix:
            raise ValueError("a Redis key prefix must not be empty: the kit would own every key")

    @property
    def registry(self) -> str:
        return self.prefix + REGISTRY

    def key(self, *parts: str) -> str:
        """The kit's name for ``parts`` ("queue", "signup" -> "qk:…:queue:signup")."""
        return self.prefix + ":".join(parts)

    def owns(self, name: str | bytes) -> bool:
        text = name.decode() if isinstance(name, bytes) else name
        return text.startswith(self.prefix) and text != self.registry

    def record(self, *names: str) -> None:
        """Note ``names`` as the kit's, before (or as) they are created, so cleanup finds them by name."""
        foreign = [n for n in names if not self.owns(n)]
        if foreign:
            raise ValueError(f"not under the kit's prefix {self.prefix!r}: {foreign[:3]}")
        if names:
            self.client.sadd(self.registry, *names)

    def recorded(self) -> set[str]:
        return {n.decode() if isinstance(n, bytes) else n for n in self.client.smembers(self.registry)}

    def strays(self) -> set[str]:
        """Keys under the prefix that nobody recorded (a framework's own bookkeeping)."""
        seen = {n.decode() if isinstance(n, bytes) else n
                for n in self.client.scan_iter(match=glob_escape(self.prefix) + "*", count=1000)}
        return {n for n in seen if self.owns(n)} - self.recorded()

    def cleanup(self, sweep: bool = False) -> int:
        """Delete every recorded name (and, ``sweep``, the strays), then the record; return how many existed."""
        names = sorted(n for n in self.recorded() | (self.strays() if sweep else set()) if self.owns(n))
        deleted = 0
        for i in range(0, len(names), BATCH):
            batch = names[i:i + BATCH]
            deleted += self.client.unlink(*batch)  # by name; UNLINK frees memory off the main thread
            self.client.srem(self.registry, *batch)  # only what was deleted: a name recorded meanwhile stays
        return deleted


def purge_install(client: Any, prefix: str, sweep: bool) -> int:
    """``queuekit down --purge`` on an external Redis: every name recorded under ``prefix`` (the install's
    own record and each stack's, ``<prefix><stack>:keys``), and with ``sweep`` every other key under it.
    Returns how many keys existed."""
    registries = [n.decode() if isinstance(n, bytes) else n
                  for n in client.scan_iter(match=glob_escape(prefix) + "*" + REGISTRY, count=1000)]
    spaces = [KeySpace(client, r[: -len(REGISTRY)]) for r in registries if r.startswith(prefix)]
    deleted = sum(space.cleanup() for space in spaces if space.prefix != prefix)
    return deleted + KeySpace(client, prefix).cleanup(sweep=sweep)
