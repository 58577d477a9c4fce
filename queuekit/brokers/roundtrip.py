"""One real message through each broker: the smallest proof that a broker works.

Used by ``queuekit ping`` and the broker tests. Each returns what it observed.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for


@dataclass(frozen=True)
class RoundTrip:
    broker: str
    sent: int
    received: int
    seconds: float
    detail: str


def rabbitmq_roundtrip(settings: Settings, count: int = 10) -> RoundTrip:
    """Publish ``count`` persistent messages with publisher confirms, consume and ack them."""
    import pika

    queue = f"queuekit.ping.{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(settings.pika_url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()  # basic_publish now raises unless the broker confirms
        ch.queue_declare(queue, durable=True, arguments={"x-expires": 60_000})
        t0 = time.monotonic()
        bodies = [f"ping-{i}".encode() for i in range(count)]
        for body in bodies:
            ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
        got: list[bytes] = []

        def take_one() -> bool:
            method, _props, body = ch.basic_get(queue, auto_ack=False)
            if method:
                got.append(body)
                ch.basic_ack(method.delivery_tag)  # ack after we hold it: at-least-once
            return len(got) == count

        wait_for(take_one, timeout=15, interval=0.01, what=f"{count} messages back from {queue}",
                 describe=lambda: f"got {len(got)}")
        ch.queue_delete(queue)
        if sorted(got) != sorted(bodies):
            raise KitError(f"RabbitMQ returned different bodies than sent: {got[:3]}…")
        return RoundTrip("rabbitmq", count, len(got), time.monotonic() - t0, "confirmed, persistent, acked")
    finally:
        conn.close()


def kafka_roundtrip(settings: Settings, count: int = 10) -> RoundTrip:
    """Produce ``count`` records under two keys (idempotent producer, acks=all) and read them back."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"queuekit.ping.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(15)
    t0 = time.monotonic()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    partitions: dict[str, set[int]] = {}
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err:
            errors.append(str(err))
        else:
            partitions.setdefault(msg.key().decode(), set()).add(msg.partition())

    for i in range(count):
        producer.produce(topic, key=f"user-{i % 2}", value=f"ping-{i}", on_delivery=delivered)
    producer.flush(15)
    if errors:
        raise KitError(f"Kafka refused records: {errors[0]}")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{topic}.g",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[str] = []
    try:
        def poll() -> bool:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                got.append((msg.value() or b"").decode())
            return len(got) == count

        wait_for(poll, timeout=30, interval=0, what=f"{count} records back from {topic}",
                 describe=lambda: f"got {len(got)}")
    finally:
        consumer.close()
        admin.delete_topics([topic])
        admin.delete_consumer_groups([f"{topic}.g"])
    same = all(len(parts) == 1 for parts in partitions.values())
    detail = "same key -> same partition" if same else f"keys spread over partitions: {partitions}"
    return RoundTrip("kafka", count, len(got), time.monotonic() - t0, detail)
