"""Reading Dramatiq's dead letters back (the driver's ``DramatiqStack.dead_letters``), whatever sits in ``.XQ``.

A failed message carries its traceback (Dramatiq's Retries middleware); a frame the consumer refused carries
the kit's reason header; a frame RabbitMQ itself dead-lettered (quorum's delivery limit, a nack of bytes that
are not a Dramatiq message) has only ``x-death``. Every one of them is read without raising. The frame
parsing is ``frames.py`` (shared with the worker, which may not import ``queuekit.stacks``).
"""
from __future__ import annotations

from queuekit.stacks.base import DeadLetter
from queuekit.stacks.rabbitmq import x_death

from . import frames


def dead_letter(service: str, body: bytes, headers: dict) -> DeadLetter:
    """A Dramatiq message in .XQ -> its actor argument (the original bytes) and the last line of its
    traceback; a frame the consumer refused (``frames.REASON_HEADER``) -> its bytes and reason. Any
    frame at all is read without raising."""
    headers = headers if isinstance(headers, dict) else {}
    if frames.REASON_HEADER in headers:
        return DeadLetter(service, frames.first_argument(body), str(headers[frames.REASON_HEADER]))
    last_line = frames.traceback_last_line(body)
    if last_line is None:  # not a Dramatiq message at all: nacked unread, RabbitMQ's DLX moved it
        return DeadLetter(service, body, f"not a Dramatiq message ({x_death(headers)})")
    # no traceback: RabbitMQ dead-lettered the frame itself (e.g. quorum's delivery_limit): x-death says why
    reason = last_line or (x_death(headers) if "x-death" in headers else "no reason recorded")
    return DeadLetter(service, frames.first_argument(body), reason)
