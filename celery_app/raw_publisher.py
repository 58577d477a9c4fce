"""Celery task frames straight onto the broker, as any producer could send them (hostile inputs).

``RawPublisher(stack).send(item)`` (``KafkaRawPublisher`` on Kafka, as the stack declares) publishes a protocol 2
task message for ``signup`` whose argument is
``item.payload``, with the corpus's overrides (``queuekit.suite.hostile``): headers (``DROP``
removes one), args, kwargs, embed, a raw body, a content type, or a revoke of its id first.

On RabbitMQ (celery, celery_quorum) with pika; on Kafka (celery_kafka) as the record kombu's
confluentkafka transport writes: the topic is the queue's name, the value kombu's virtual-transport
JSON ``{"body" (base64), "content-type", "content-encoding", "headers", "properties"}``; on Redis
(celery_redis) that same JSON pushed onto the queue's list.
"""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from queuekit.core.waiting import wait_for
from queuekit.stacks.wires import DROP, KafkaWire, PikaWire, frame_spec
from queuekit.stacks.wires import HostileFrame as Hostile

from . import topology

QUEUE = topology.queue_name("signup")  # celery.signup, or with the install's Kafka namespace first


def task_frame(item: Hostile) -> tuple[str, dict[str, Any], bytes, str]:
    """(task id, headers, body, content type) of the frame for ``item``."""
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
    return task_id, headers, body, spec.get("content_type", "application/json")


class RawPublisher(PikaWire):
    """pika onto RabbitMQ's default exchange, confirmed."""

    def send(self, item: Hostile, queue: str = QUEUE) -> None:
        task_id, headers, body, content_type = task_frame(item)
        if frame_spec(item, "celery").get("revoke"):
            self._revoke(task_id)
        self.publish(queue, body, content_type=content_type, content_encoding="utf-8", headers=headers)

    def _revoke(self, task_id: str) -> None:
        """Revoke the id and wait until every live worker lists it as revoked."""
        control = self.stack.app.control
        control.revoke(task_id)
        workers = len(self.stack.worker_pids())

        def everyone() -> bool:
            seen = control.inspect(timeout=1.0).revoked() or {}
            return sum(task_id in ids for ids in seen.values()) >= workers

        wait_for(everyone, timeout=30, what=f"{workers} Celery workers to list {task_id} as revoked")


class KafkaRawPublisher(KafkaWire):
    """confluent-kafka onto the queue's topic, in kombu's record format; each record flushed (delivered)."""

    def __init__(self, stack):
        super().__init__(stack, acks="all", **{"enable.idempotence": True})

    def send(self, item: Hostile, queue: str = QUEUE) -> None:
        own = frame_spec(item, "celery_kafka")  # celery_kafka's own inputs: records kombu cannot read
        raw = own.get("record")
        task_id, headers, body, content_type = task_frame(item)
        if frame_spec(item, "celery").get("revoke"):
            # the transport has no fanout, so Celery's remote control (revoke) is off on celery_kafka
            raise RuntimeError("no remote control on kombu's Kafka transport: nothing can revoke a task")
        record = {"body": base64.b64encode(body).decode(), "content-encoding": "utf-8", "content-type": content_type,
                  "headers": headers,
                  "properties": {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2, "priority": 0,
                                 "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
                                 "delivery_info": {"exchange": "", "routing_key": queue}}}
        self.produce(queue, raw if raw is not None else json.dumps(record).encode(), compress=own.get("compress"))


class RedisRawPublisher:
    """redis-py onto the queue's list as kombu's Redis transport writes it: LPUSH of its JSON message
    (``{"body" (base64), "content-type", "content-encoding", "headers", "properties"}``), under the stack's
    key prefix. The reply to LPUSH is the broker's acceptance: there is nothing else to confirm."""

    def __init__(self, stack):
        self.stack = stack
        self.last: str | None = None

    def close(self) -> None:
        pass  # the stack's own client (RedisParts), closed with the stack

    def send(self, item: Hostile, queue: str = QUEUE) -> None:
        raw = frame_spec(item, "celery_redis").get("item")  # celery_redis's own inputs: items kombu cannot read
        if raw is not None:
            self.stack.parts.client.lpush(self.stack.parts.key(queue), raw)
            return
        task_id, headers, body, content_type = task_frame(item)
        if frame_spec(item, "celery").get("revoke"):
            RawPublisher._revoke(self, task_id)  # type: ignore[arg-type]  # Celery's remote control: pub/sub on Redis
        message = {"body": base64.b64encode(body).decode(), "content-encoding": "utf-8", "content-type": content_type,
                   "headers": headers,
                   "properties": {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2, "priority": 0,
                                  "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
                                  "delivery_info": {"exchange": "", "routing_key": queue}}}
        self.stack.parts.client.lpush(self.stack.parts.key(queue), json.dumps(message))
