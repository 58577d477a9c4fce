"""The two wires the hostile suite's raw publishers write on, as any producer could, and the frame helpers.

Each app package's ``raw_publisher.py`` builds its framework's frame (or none: the bytes as
they are) from a hostile input (``queuekit.suite.hostile.Hostile``: its ``via``, ``payload`` and
``frame``; ``frame_spec`` gives the frame overrides meant for one protocol, ``DROP`` in a spec
removes a header or field) and hands it to one of these:

* ``PikaWire``: pika onto RabbitMQ's default exchange, publisher confirms on, ``mandatory``:
  ``basic_publish`` raises on a nack or an unroutable frame, so "refused at publish" is observed,
  never assumed;
* ``KafkaWire``: confluent-kafka, each record flushed; a record the broker (or the producer's own
  size limit) refuses raises ``KafkaException`` with the broker's error.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pika
from confluent_kafka import KafkaError, KafkaException, Producer

DROP = object()  # in a frame spec: remove this header / field


class HostileFrame(Protocol):
    """What a raw publisher reads of a hostile input (``queuekit.suite.hostile.Hostile``)."""

    name: str
    via: str
    payload: bytes
    frame: Mapping[str, Any]


def frame_spec(item: HostileFrame, protocol: str) -> Mapping[str, Any]:
    """The frame overrides for ``protocol``: the input's own when it is that protocol's, else none."""
    return item.frame if item.via == protocol else {}


class PikaWire:
    def __init__(self, stack):
        self.stack = stack
        self.conn = pika.BlockingConnection(pika.URLParameters(stack.settings.pika_url))
        self.channel = self.conn.channel()
        self.channel.confirm_delivery()  # basic_publish raises on a nack or an unroutable frame

    def close(self) -> None:
        self.conn.close()

    def publish(self, queue: str, body: bytes, **properties) -> None:
        self.channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, **properties),
                                   mandatory=True)


class KafkaWire:
    """``produce`` flushes each record; ``last`` is where the last one landed ("topic[partition]@offset"), the
    only name of a record the consumer cannot decode (its dead letter carries the coordinates, not the bytes).
    A frame spec's ``compress`` (``{"type": "zstd", "zeros": n}``) sends the value with ``n`` zero bytes more,
    compressed by the producer as one batch: a compression bomb a few KB on the wire."""

    def __init__(self, stack, **config):
        self.stack = stack
        self.config = {"bootstrap.servers": stack.settings.kafka_bootstrap, **config}
        self.producer = Producer(self.config)
        self.compressing: dict[str, Producer] = {}
        self.last: str | None = None

    def close(self) -> None:
        for producer in (self.producer, *self.compressing.values()):
            producer.flush(10)

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers=None,
                compress: Mapping[str, Any] | None = None) -> None:
        producer = self.producer
        if compress:
            value = value + bytes(compress.get("zeros", 0))
            producer = self.compressing.get(compress["type"]) or self.compressing.setdefault(compress["type"], Producer(
                {**self.config, "compression.type": compress["type"], "message.max.bytes": 200_000_000,
                 "linger.ms": 0}))
        failed: list = []

        def delivered(err, msg) -> None:
            if err:
                failed.append(err)
            else:
                self.last = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"

        producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
        if producer.flush(30):
            failed.append(KafkaError(KafkaError._TIMED_OUT, "record not delivered within 30 s"))
        if failed:
            raise KafkaException(failed[0])
