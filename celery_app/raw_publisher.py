"""Celery task frames straight onto RabbitMQ with pika, as any producer could send them (hostile inputs).

``RawPublisher(stack).send(item)`` publishes a protocol 2 task message for ``signup`` whose argument is
``item.payload``, with the corpus's overrides (``queuekit.suite.hostile``): headers (``DROP``
removes one), args, kwargs, embed, a raw body, a content type, or a revoke of its id first.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import pika

from queuekit.core.waiting import wait_for
from queuekit.suite.hostile import DROP, Hostile, frame_spec


class RawPublisher:
    def __init__(self, stack):
        self.stack = stack
        self.conn = pika.BlockingConnection(pika.URLParameters(stack.settings.pika_url))
        self.channel = self.conn.channel()
        self.channel.confirm_delivery()  # basic_publish raises on a nack or an unroutable frame

    def close(self) -> None:
        self.conn.close()

    def send(self, item: Hostile, queue: str = "celery.signup") -> None:
        spec = frame_spec(item, "celery")
        task_id = str(uuid.uuid4())
        headers: dict[str, Any] = {
            "lang": "py", "task": "signup", "id": task_id, "shadow": None, "eta": None, "expires": None,
            "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
            "parent_id": None, "argsrepr": "('...',)", "kwargsrepr": "{}", "origin": "hostile@wire",
            "ignore_result": False,
        }
        for key, value in spec.get("headers", {}).items():
            if value is DROP:
                headers.pop(key)
            else:
                headers[key] = value
        embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None, **spec.get("embed", {})}
        args = spec.get("args", [item.payload.decode("utf-8", "surrogateescape")])
        body = spec.get("body") or json.dumps([args, spec.get("kwargs", {}), embed]).encode()
        if spec.get("revoke"):
            self._revoke(task_id)
        self.channel.basic_publish("", queue, body, pika.BasicProperties(
            content_type=spec.get("content_type", "application/json"), content_encoding="utf-8",
            headers=headers, delivery_mode=2), mandatory=True)

    def _revoke(self, task_id: str) -> None:
        """Revoke the id and wait until every live worker lists it as revoked."""
        control = self.stack.app.control
        control.revoke(task_id)
        workers = len(self.stack.worker_pids())

        def everyone() -> bool:
            seen = control.inspect(timeout=1.0).revoked() or {}
            return sum(task_id in ids for ids in seen.values()) >= workers

        wait_for(everyone, timeout=30, what=f"{workers} Celery workers to list {task_id} as revoked")
