"""Dramatiq messages straight onto RabbitMQ with pika, as any producer could send them (hostile inputs).

``RawPublisher(stack).send(item)`` publishes a message for the ``signup`` actor whose argument is
``item.payload``, with the corpus's overrides (``queuekit.suite.hostile``): message fields or a raw body.
``RedisRawPublisher`` writes the same onto Redis for the dramatiq_redis stack.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import PikaWire, frame_spec

from .redis_broker import namespace


class RawPublisher(PikaWire):
    def send(self, item: Hostile, queue: str = "dramatiq.signup") -> None:
        spec = frame_spec(item, "dramatiq")
        fields = {"queue_name": queue, "actor_name": "signup",
                  "args": [item.payload.decode("utf-8", "surrogateescape")], "kwargs": {}, "options": {},
                  "message_id": str(uuid.uuid4()), "message_timestamp": int(time.time() * 1000)}
        fields.update(spec.get("fields", {}))
        body = spec.get("body") or json.dumps(fields).encode()
        self.publish(queue, body, content_type="application/json", content_encoding="utf-8")


class RedisRawPublisher:
    """The same messages onto Redis as RedisBroker's enqueue writes them (dramatiq_redis): the message under a
    fresh id in ``<ns>:Q.msgs`` and the id pushed on ``<ns>:Q``, in one MULTI. A message built from fields
    carries that id as ``options.redis_message_id``, as Dramatiq's does; a raw body carries whatever it is."""

    def __init__(self, stack):
        self.stack = stack
        self.client = stack.parts.client
        self.ns = namespace(stack.settings)

    def close(self) -> None:
        return None  # the stack's client: closed with the stack

    def send(self, item: Hostile, queue: str = "dramatiq.signup") -> None:
        spec = frame_spec(item, "dramatiq")
        redis_id = str(uuid.uuid4())
        fields: dict[str, Any] = {"queue_name": queue, "actor_name": "signup",
                                  "args": [item.payload.decode("utf-8", "surrogateescape")], "kwargs": {},
                                  "options": {}, "message_id": str(uuid.uuid4()),
                                  "message_timestamp": int(time.time() * 1000)}
        fields.update(spec.get("fields", {}))
        options = fields.get("options")
        if isinstance(options, dict):  # enqueue adds its id to the options a producer gave (message.copy)
            fields["options"] = {**options, "redis_message_id": redis_id}
        body = spec.get("body") or json.dumps(fields).encode()
        pipe = self.client.pipeline(transaction=True)  # the dispatch script's enqueue: HSET then RPUSH, atomically
        pipe.hset(f"{self.ns}:{queue}.msgs", redis_id, body)
        pipe.rpush(f"{self.ns}:{queue}", redis_id)
        pipe.execute()
