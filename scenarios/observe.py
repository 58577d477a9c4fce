"""Observations shared by scenarios, read only from the ledger and the broker's own view."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from queuekit.core.envelope import Envelope, MalformedMessage, decode
from queuekit.core.waiting import wait_for
from queuekit.suite.model import Context, Kind

# what ``delivery``'s counts mean, for the report (Scenario.kinds)
DELIVERY_KINDS: dict[str, Kind] = {"lost": "loss", "duplicates": "duplicate"}


def effect_keys(ctx: Context, service: str) -> list[str]:
    return [e.key for e in ctx.ledger.effects(service=service)]


def wait_for_effects(ctx: Context, service: str, keys: Iterable[str], timeout: float = 60.0) -> None:
    """Poll the ledger until every key has an effect in ``service``."""
    wanted = set(keys)

    def missing() -> set[str]:
        return wanted - set(effect_keys(ctx, service))

    wait_for(lambda: not missing(), timeout=timeout, what=f"effects in {service} for {len(wanted)} keys",
             describe=lambda: f"{len(missing())} still missing, e.g. {sorted(missing())[:3]}")


def delivery(ctx: Context, envelopes: Sequence[Envelope], service: str) -> dict[str, Any]:
    """Lost / duplicated / dead-lettered, for ``envelopes`` as seen by ``service``."""
    keys = {e.key for e in envelopes}
    counts: dict[str, int] = {}
    for key in effect_keys(ctx, service):
        counts[key] = counts.get(key, 0) + 1
    dead = ctx.stack.dead_letters(ctx.workload)
    dead_keys = {found for d in dead if (found := key_of(d.payload))}
    return {
        "published": len(keys),
        "effects": sum(counts.get(k, 0) for k in keys),
        "lost": len(keys - set(counts) - dead_keys),  # neither applied nor dead-lettered: gone
        "duplicates": sum(n - 1 for k, n in counts.items() if k in keys and n > 1),
        "dead_letters": len(dead),
    }


def key_of(payload: bytes) -> str | None:
    try:
        return decode(payload).key
    except MalformedMessage:
        return None


