"""Messages straight onto the stream with pika (AMQP 0.9.1), as any producer could append them (hostile inputs).

``RawPublisher(stack).send(item)`` publishes ``item.payload`` to the workload's entry stream through the
default exchange, with publisher confirms; RabbitMQ stores it as a stream entry like any other.
"""
from __future__ import annotations

from queuekit.suite.hostile import Hostile
from queuekit.suite.wires import PikaWire

from . import topology


class RawPublisher(PikaWire):
    def send(self, item: Hostile, workload: str = "signup") -> None:
        self.publish(topology.entry_stream(workload), item.payload)
