"""What a stack's ``reset`` may delete: the kit's own named objects, and dead letters never silently.

Reset deletes by name (the topology's queues, exchanges, topics and groups), never by prefix, so
a foreign queue or topic that happens to share the prefix is left alone. A dead-letter place that
still holds messages is deleted on the kit's own broker with a warning, and on an external
(shared) broker only when the user said so: ``QUEUEKIT_RESET_DEAD_LETTERS=1``.
"""
from __future__ import annotations

import logging
import os

from queuekit.core.config import Settings
from queuekit.core.errors import KitError

RESET_DEAD_LETTERS_ENV = "QUEUEKIT_RESET_DEAD_LETTERS"
log = logging.getLogger("queuekit.reset")


def release_dead_letters(settings: Settings, broker: str, held: dict[str, int]) -> None:
    """Raise unless the dead letters in ``held`` (name -> messages) may be deleted; warn when they are."""
    held = {name: n for name, n in held.items() if n}
    if not held:
        return
    what = ", ".join(f"{name} ({n} message{'s' if n != 1 else ''})" for name, n in sorted(held.items()))
    if settings.external(broker) and os.environ.get(RESET_DEAD_LETTERS_ENV) != "1":
        raise KitError(f"reset would delete dead letters on the shared {broker}: {what}",
                       f"read them first (Stack.dead_letters), then set {RESET_DEAD_LETTERS_ENV}=1")
    log.warning("reset deletes dead letters: %s", what)
