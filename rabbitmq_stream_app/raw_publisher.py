"""Messages straight onto the stream with pika (AMQP 0.9.1), as any producer could append them (hostile inputs).

``RawPublisher(stack).send(item)`` publishes ``item.payload`` to the workload's entry stream through the
default exchange, with publisher confirms; RabbitMQ stores it as a stream entry like any other.
"""
from __future__ import annotations

import pika

from queuekit.suite.hostile import Hostile

from . import topology


class RawPublisher:
    def __init__(self, stack):
        self.conn = pika.BlockingConnection(pika.URLParameters(stack.settings.pika_url))
        self.channel = self.conn.channel()
        self.channel.confirm_delivery()

    def close(self) -> None:
        self.conn.close()

    def send(self, item: Hostile, workload: str = "signup") -> None:
        self.channel.basic_publish("", topology.entry_stream(workload), item.payload,
                                   pika.BasicProperties(delivery_mode=2), mandatory=True)
