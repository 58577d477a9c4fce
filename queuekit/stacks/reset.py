"""What a stack's ``reset`` may delete: the kit's own named objects, and dead letters never silently.

Reset deletes by name (the topology's queues, exchanges, topics and groups), never by prefix, so
a foreign queue or topic that happens to share the prefix is left alone. On an external (shared)
broker the names live in this install's own namespace and are claimed in its manifest first
(``queuekit.stacks.manifest``: a foreign object of the same name stops the reset), so the dead
letters reset meets are this install's own: deleted, with a warning line naming them and their count.
"""
from __future__ import annotations

import logging

from queuekit.core.config import Settings

log = logging.getLogger("queuekit.reset")


def release_dead_letters(settings: Settings, broker: str, held: dict[str, int]) -> None:
    """Say which dead letters in ``held`` (name -> messages) reset is about to delete."""
    held = {name: n for name, n in held.items() if n}
    if not held:
        return
    what = ", ".join(f"{name} ({n} message{'s' if n != 1 else ''})" for name, n in sorted(held.items()))
    log.warning("reset deletes dead letters on %s %s: %s", "the shared" if settings.external(broker) else "the kit's",
                broker, what)
