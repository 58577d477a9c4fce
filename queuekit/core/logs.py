"""Worker log lines never carry a whole message body: long lines become a preview.

Dramatiq logs a failed message with ``%s`` of the message, i.e. its whole argument (the
envelope: one 20 MiB log line for a 20 MiB message); Celery quotes bodies on decode errors.
``install_preview()`` puts ``Preview`` on every root handler of a worker process: a record
longer than ``MAX_LOG_CHARS`` is cut there and says how long it was (ids come first in every
framework's line, so they survive).
"""
from __future__ import annotations

import logging

MAX_LOG_CHARS = 2000


class Preview(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format: let the handler report it as usual
            return True
        if len(text) > MAX_LOG_CHARS:
            record.msg, record.args = f"{text[:MAX_LOG_CHARS]}… [{len(text)} chars, cut]", None
        return True


def install_preview(logger: logging.Logger | None = None) -> None:
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, Preview) for f in handler.filters):
            handler.addFilter(Preview())
