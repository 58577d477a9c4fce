"""A dead-letter stream entry as the harness's ``DeadLetter``: the reader appended the original bytes as the
body, with ``service`` and ``reason`` in its application properties (``consumers.py``)."""
from __future__ import annotations

from rstream import AMQPMessage

from queuekit.stacks.base import DeadLetter


def dead_letter(service: str, msg: AMQPMessage) -> DeadLetter:
    props = {_text(k): _text(v) for k, v in (msg.application_properties or {}).items()}
    body = msg.body if isinstance(msg.body, (bytes, bytearray)) else b""  # an empty body reads as None
    return DeadLetter(service=props.get("service") or service, payload=bytes(body), reason=props.get("reason", ""))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
