"""Records straight onto Kafka with confluent-kafka, as any producer could write them (hostile inputs).

``RawPublisher(stack).send(item)`` produces ``item.payload`` to ``qk.signup`` (or its retry topic) with the
corpus's key and headers (``queuekit.suite.hostile``). Its producer allows 2 MB records, so the
broker's own limit (1 MiB) is what refuses the biggest ones.
"""
from __future__ import annotations

from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import KafkaWire, frame_spec

from . import topology


class RawPublisher(KafkaWire):
    def __init__(self, stack):
        super().__init__(stack, **{"message.max.bytes": 2_000_000})

    def send(self, item: Hostile, workload: str = "signup") -> None:
        spec = frame_spec(item, "kafka")
        route = topology.routes(workload)[0]
        topic = route.retry_topic if spec.get("topic") == "retry" else route.source
        self.produce(topic, item.payload, spec.get("key"), spec.get("headers"), spec.get("compress"))
