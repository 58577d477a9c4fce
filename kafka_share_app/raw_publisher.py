"""Records straight onto a share group's topic with confluent-kafka, as any producer could write them.

``RawPublisher(stack).send(item)`` produces ``item.payload`` to the workload's entry topic (hostile
inputs, ``queuekit.suite.hostile``). Its producer allows 2 MB records, so the broker's own limit
(1 MiB) is what refuses the biggest ones.
"""
from __future__ import annotations

from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import KafkaWire, frame_spec

from . import topology


class RawPublisher(KafkaWire):
    def __init__(self, stack):
        super().__init__(stack, **{"message.max.bytes": 2_000_000})

    def send(self, item: Hostile, workload: str = "signup") -> None:
        spec = frame_spec(item, "kafka_share")
        self.produce(topology.entry_topic(workload), item.payload, spec.get("key"), spec.get("headers"),
                     spec.get("compress"))
