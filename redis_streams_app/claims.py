"""The lease: pending entries a dead (or slow) consumer holds are claimed by another after ``min_idle_ms``.

Redis has no session and no member eviction: a consumer that dies (SIGKILL, OOM, a lost host)
leaves its pending entries in the group's PEL under its name for good. Every consumer, between its
batches, runs ``XAUTOCLAIM <stream> <group> <me> <min_idle_ms> <cursor> COUNT <n>``: entries idle
(not delivered, claimed or acked) for at least ``min_idle_ms`` become its own, delivery count + 1.

* ``min_idle_ms`` is the lease. It is per entry ("record" lease): an entry whose handler is still
  running on a live consumer is claimed just the same once it is that old, and runs twice at once
  (the ledger's guard keeps one effect). The kit does not renew a lease (an ``XCLAIM`` of one's own
  entry would reset its idle time): a handler longer than ``min_idle_ms`` is handed around.
  Default ``CLAIM_IDLE_MS`` (10 s); ``options.record_lock_ms`` sets it (the share groups' lock).
* The delivery count is the broker's (XPENDING's ``times_delivered``): an entry claimed when it was
  already delivered ``max_retries + 1`` times is not handled again but dead-lettered (its consumers
  keep dying on it, or it outlives the lease every time): the adapter's delivery limit.
* Entries trimmed away (MAXLEN) while pending: XAUTOCLAIM (Redis 7) drops them from the PEL and
  names them; they are lost by design and logged, with their ids.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .topology import StreamRoute as Route

log = logging.getLogger("redis_streams_app.claims")
CLAIM_IDLE_MS = 10_000  # the default lease: far above a normal handler, well within the harness's 40 s kill waits
CHECK_EVERY_S = 0.5  # how often (at most) a consumer looks for claimable entries, between its batches


@dataclass
class Claims:
    """One consumer's claiming state: the XAUTOCLAIM cursor and when it looked last."""

    route: Route
    consumer: str
    min_idle_ms: int
    limit: int  # deliveries an entry may have had and still be handled (max_retries + 1)
    cursor: str = "0-0"
    next_check: float = field(default=0.0)

    def due(self) -> bool:
        return time.monotonic() >= self.next_check

    def claim(self, client, count: int) -> list[tuple[bytes, dict, int]]:
        """(id, fields, deliveries) of the entries this consumer takes over now."""
        self.next_check = time.monotonic() + min(CHECK_EVERY_S, self.min_idle_ms / 4000)
        # [semantics:ack-timing] the lease: an entry idle for min_idle_ms (its holder dead, or just slower) becomes ours
        reply = client.xautoclaim(self.route.source, self.route.group, self.consumer, self.min_idle_ms,
                                  start_id=self.cursor, count=count)
        cursor, entries = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        self.cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if deleted:
            log.warning("%s: %d pending entries of group %s were trimmed (MAXLEN) before anyone acknowledged them: "
                        "lost: %s", self.route.source, len(deleted), self.route.group, deleted[:10])
        return [(entry_id, fields, self.deliveries(client, entry_id)) for entry_id, fields in entries
                if fields is not None]

    def deliveries(self, client, entry_id: bytes) -> int:
        """XPENDING's delivery count of one entry (this claim included)."""
        found = client.xpending_range(self.route.source, self.route.group, min=entry_id, max=entry_id, count=1)
        return int(found[0]["times_delivered"]) if found else 1

    def over_limit(self, deliveries: int) -> bool:
        # [semantics:dead-letter] delivered more than max_retries + 1 times (XPENDING's count, kept by Redis):
        # dead-lettered on this claim instead of being handled again
        return deliveries > self.limit
