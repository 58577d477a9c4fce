"""Reading Celery's dead letters back (the driver's ``CeleryStack.dead_letters``), whatever sits in ``.dlq``.

Ours carry the envelope bytes (or a whole frame, ``topology.FRAME_HEADER``) and a reason header; the
broker's own (DLX: a reject, quorum's delivery limit) carry a whole Celery message and ``x-death``. Every
one of them is read without raising. The frame parsing is ``frames.py``.
"""
from __future__ import annotations

import base64
import json

from queuekit.stacks.base import DeadLetter
from queuekit.stacks.rabbitmq import x_death

from . import frames, topology


def dead_letter(service: str, body: bytes, headers: dict) -> DeadLetter:
    """Ours carry the envelope bytes (or a whole frame, ``topology.FRAME_HEADER``) and a reason; the
    broker's (DLX) carry a whole Celery message. Any frame at all is read without raising."""
    try:
        headers = headers if isinstance(headers, dict) else {}
        if topology.REASON_HEADER in headers:
            payload = frames.task_argument(body) if topology.FRAME_HEADER in headers else body
            return DeadLetter(service, payload, str(headers[topology.REASON_HEADER]))
        what = f"task {str(headers['task'])[:100]!r}" if "task" in headers else "not a Celery task message"
        return DeadLetter(service, frames.task_argument(body), f"{x_death(headers)} by the Celery worker: {what}")
    except Exception as exc:  # noqa: BLE001 - a reader of dead letters must read every one of them
        return DeadLetter(service, body, f"unreadable dead letter: {type(exc).__name__}: {exc}"[:300])


def virtual_message(value: bytes | str) -> tuple[bytes, dict]:
    """(body, headers) of a message as kombu's virtual transports store it (a Kafka record, a Redis list item):
    JSON ``{"body", "headers", "properties": {"body_encoding"}}``."""
    doc = json.loads(value)
    body = doc.get("body", "")
    raw = base64.b64decode(body) if doc.get("properties", {}).get("body_encoding") == "base64" else body.encode()
    return raw, doc.get("headers") or {}
