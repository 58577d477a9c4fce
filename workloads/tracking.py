"""Event tracking: pub/sub fan-out of every event to two subscriber services.

- "analytics" counts events per kind;
- "recommendations" remembers the last ``seq`` seen per user, which is only
  right when each user's events arrive in order.

Handlers are stateless and return the effect payload; the state a service
would hold is folded from its effect payloads, in the order they were applied
(``counts_per_kind``, ``last_seq_per_user``). ``make_messages`` interleaves
per-user sequences 0..k so reordering by the transport is observable.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from .messages import TrackEvent

TRACKING_SERVICES = ("analytics", "recommendations")
EVENT_KINDS = ("view", "click", "like", "share")
START_TS = 1_700_000_000.0  # a fixed epoch so generated messages are deterministic


def count_kind(msg: TrackEvent) -> dict:
    """analytics: this event adds one to its kind's count."""
    return {"kind": msg.kind}


def remember_last_seq(msg: TrackEvent) -> dict:
    """recommendations: this event is now the user's latest."""
    return {"user_id": msg.user_id, "last_seq": msg.seq}


def counts_per_kind(payloads: Iterable[Mapping]) -> dict[str, int]:
    """Fold analytics payloads into counts per kind."""
    counts: dict[str, int] = {}
    for payload in payloads:
        counts[payload["kind"]] = counts.get(payload["kind"], 0) + 1
    return counts


def last_seq_per_user(payloads: Iterable[Mapping]) -> dict[int, int]:
    """Fold recommendations payloads, in applied order: last write wins (as a real service would)."""
    return {payload["user_id"]: payload["last_seq"] for payload in payloads}


def make_messages(n: int, seed: int = 0, users: int = 8) -> list[TrackEvent]:
    """``n`` events from ``users`` users, each user's ``seq`` 0, 1, 2... in publish order.

    Users are interleaved at random (deterministic for a seed), but within one
    user the list order is seq order: publishing the list in order is correct.
    """
    rng = random.Random(seed)
    users = max(1, min(users, n)) if n > 0 else 1
    next_seq = {user_id: 0 for user_id in range(1, users + 1)}
    events = []
    for i in range(n):
        user_id = rng.randint(1, users)
        kind = rng.choice(EVENT_KINDS)
        events.append(TrackEvent(user_id=user_id, seq=next_seq[user_id], kind=kind, ts=START_TS + i * 0.001))
        next_seq[user_id] += 1
    return events
