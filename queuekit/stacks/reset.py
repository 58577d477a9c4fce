"""What a stack's ``reset`` may delete, and the account of what it did delete.

Reset deletes by name (the topology's queues, exchanges, topics, groups, streams and keys), never by
prefix, so a foreign queue or topic that happens to share the prefix is left alone. On an external
(shared) broker the names live in this install's own namespace and are claimed in its manifest first
(``queuekit.stacks.manifest``: a foreign object of the same name stops the reset).

``Stack.reset(workloads)`` deletes only the objects of those workloads (their dead letters included);
an object another workload uses too (Celery's ``celery.tasks`` exchange, a Redis stack's shared
bookkeeping) is deleted only by a reset of every workload. Each purge fills a ``Purged``: one line per
kind of object deleted, names and count, and one for the dead letters deleted with the messages they held.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from workloads import WORKLOADS

log = logging.getLogger("queuekit.reset")


@dataclass
class Purged:
    """What one reset deleted: per kind (queue, exchange, topic, group, stream, list, key) the names that
    existed, and per dead-letter place deleted the messages it held."""

    objects: dict[str, list[str]] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    swept: dict[str, int] = field(default_factory=dict)  # Redis: prefix -> keys a framework made on its own

    def deleted(self, kind: str, names: Iterable[str]) -> None:
        """``names`` of ``kind`` existed and are deleted (call with what the broker listed, not what was asked)."""
        bucket = self.objects.setdefault(kind, [])
        seen = set(bucket)  # a reset of RQ's queues may name thousands of jobs
        for name in names:
            if name not in seen:
                bucket.append(name)
                seen.add(name)
        if not bucket:
            del self.objects[kind]

    def dead(self, held: Mapping[str, int]) -> None:
        """These dead-letter places (name -> messages) are deleted with their messages."""
        self.dead_letters.update({name: n for name, n in held.items() if n})

    def sweep(self, prefix: str, count: int) -> None:
        """``count`` further keys under ``prefix`` (a framework's own bookkeeping, found by SCAN) are deleted."""
        if count:
            self.swept[prefix] = self.swept.get(prefix, 0) + count

    def lines(self, where: str) -> list[str]:
        """One line per kind deleted, then one for the dead letters; ``where`` names the stack and workloads."""
        if not self.objects and not self.dead_letters and not self.swept:
            return [f"reset {where}: nothing of it on the broker"]
        lines = [f"reset {where}: deleted {len(names)} {kind}(s): {_some(names)}" for kind, names in self.objects.items()]
        lines += [f"reset {where}: deleted {n} more key(s) under {prefix!r} (the framework's own bookkeeping)"
                  for prefix, n in self.swept.items()]
        if self.dead_letters:
            what = ", ".join(f"{name} ({n} message{'s' if n != 1 else ''})" for name, n in sorted(self.dead_letters.items()))
            lines.append(f"reset {where}: deleted dead letters: {what}")
        return lines

    def log(self, where: str) -> None:
        for line in self.lines(where):
            (log.warning if "dead letters" in line else log.info)("%s", line)


def _some(names: Sequence[str], shown: int = 8) -> str:
    return ", ".join(names[:shown]) + (f", … (+{len(names) - shown} more)" if len(names) > shown else "")


def only(workloads: Sequence[str], names_of: Callable[[Sequence[str]], Iterable[str]]) -> list[str]:
    """The names ``names_of(workloads)`` gives that no other workload uses (``names_of(others)``): what a
    reset of ``workloads`` deletes. Of every workload, everything."""
    others = [w for w in WORKLOADS if w not in workloads]
    theirs = set(names_of(others)) if others else set()
    return [name for name in dict.fromkeys(names_of(workloads)) if name not in theirs]
