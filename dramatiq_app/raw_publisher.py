"""Dramatiq messages straight onto RabbitMQ with pika, as any producer could send them (hostile inputs).

``RawPublisher(stack).send(item)`` publishes a message for the ``signup`` actor whose argument is
``item.payload``, with the corpus's overrides (``queuekit.suite.hostile``): message fields or a raw body.
"""
from __future__ import annotations

import json
import time
import uuid

from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import PikaWire, frame_spec


class RawPublisher(PikaWire):
    def send(self, item: Hostile, queue: str = "dramatiq.signup") -> None:
        spec = frame_spec(item, "dramatiq")
        fields = {"queue_name": queue, "actor_name": "signup",
                  "args": [item.payload.decode("utf-8", "surrogateescape")], "kwargs": {}, "options": {},
                  "message_id": str(uuid.uuid4()), "message_timestamp": int(time.time() * 1000)}
        fields.update(spec.get("fields", {}))
        body = spec.get("body") or json.dumps(fields).encode()
        self.publish(queue, body, content_type="application/json", content_encoding="utf-8")
