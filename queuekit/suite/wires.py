"""The two wires the hostile suite's raw publishers write on, as any producer could.

Each app package's ``raw_publisher.py`` builds its framework's frame (or none: the bytes as
they are) and hands it to one of these:

* ``PikaWire``: pika onto RabbitMQ's default exchange, publisher confirms on, ``mandatory``:
  ``basic_publish`` raises on a nack or an unroutable frame, so "refused at publish" is observed,
  never assumed;
* ``KafkaWire``: confluent-kafka, each record flushed; a record the broker (or the producer's own
  size limit) refuses raises ``KafkaException`` with the broker's error.
"""
from __future__ import annotations

import pika
from confluent_kafka import KafkaError, KafkaException, Producer


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
    def __init__(self, stack, **config):
        self.stack = stack
        self.producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap, **config})

    def close(self) -> None:
        self.producer.flush(10)

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers=None) -> None:
        failed: list = []
        self.producer.produce(topic, value, key, headers=headers,
                              on_delivery=lambda err, _msg: None if err is None else failed.append(err))
        if self.producer.flush(30):
            failed.append(KafkaError(KafkaError._TIMED_OUT, "record not delivered within 30 s"))
        if failed:
            raise KafkaException(failed[0])
