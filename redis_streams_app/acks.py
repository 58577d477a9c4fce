"""When an entry is acknowledged (XACK) — and with it the delivery guarantee.

``XREADGROUP ... >`` hands a consumer the group's next entries and (by default) puts each in the
group's pending entries list (PEL) under that consumer's name, with a delivery count of 1. An
entry leaves the PEL only by XACK. So:

* after the work (default): the consumer handles the entry, then ONE ``MULTI``/``EXEC`` holds what
  handling produced (the forward to the next step's stream, or the dead letter) AND the XACK: both
  or neither, so no output is written twice for one ack. A crash before EXEC leaves the entry
  pending; another consumer claims it once it has been idle ``min_idle_ms`` (``claims.py``):
  at-least-once, the ledger's guard absorbing the repeat.
* on receipt (``early_ack``): ``XREADGROUP ... NOACK``: Redis counts the entry delivered and
  acknowledged as it sends it; it never enters the PEL, so nothing can claim it back: a crash
  mid-handler loses it (at-most-once).

Redis takes an XACK from any consumer of the group, whoever holds the entry now: a slow first holder
whose entry was claimed by another consumer still settles it when it finishes (``XACK`` answers 1),
and the claimer's own XACK then answers 0 (logged). Nothing checks ownership: plain redis-py.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from .topology import MAXLEN
from .topology import StreamRoute as Route

log = logging.getLogger("redis_streams_app.acks")
Fields = dict  # an entry's field -> value pairs, as redis-py reads them (bytes -> bytes)


def read_new(client, route: Route, consumer: str, count: int, block_ms: int, early_ack: bool) -> list:
    """Up to ``count`` entries never delivered to the group, waiting up to ``block_ms`` for one."""
    # [semantics:ack-timing] default: read INTO the PEL, XACKed after the handler (settle); early_ack reads with NOACK:
    # acknowledged as it is delivered, before the handler runs: at-most-once
    # [semantics:prefetch] COUNT = prefetch: what one read hands this consumer (all pending under its name until acked)
    reply = client.xreadgroup(route.group, consumer, {route.source: ">"}, count=count, block=block_ms,
                              noack=early_ack)
    return list(reply[0][1]) if reply else []


def settle(client, route: Route, entry_id: bytes, outputs: Sequence[tuple[str, Fields]], acked: bool) -> None:
    """Write ``outputs`` (stream, fields) and XACK ``entry_id`` in one MULTI/EXEC (``acked``: read with NOACK,
    nothing to acknowledge)."""
    pipe = client.pipeline(transaction=True)
    for stream, fields in outputs:
        pipe.xadd(stream, fields, maxlen=MAXLEN, approximate=True)  # MAXLEN ~: see topology.MAXLEN
    if not acked:
        # [semantics:offset-commit] XACK AFTER the handler and in the same EXEC as its outputs: a crash before this
        # line leaves the entry pending, claimed and handled again elsewhere: at-least-once
        pipe.xack(route.source, route.group, entry_id)
    replies = pipe.execute()
    if not acked and replies[-1] == 0:  # already acknowledged: by the first holder of an entry we had claimed
        log.info("%s %s was already acknowledged by another consumer of %s", route.source, entry_id, route.group)
