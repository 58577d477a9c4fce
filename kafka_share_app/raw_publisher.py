"""Records straight onto a share group's topic with confluent-kafka, as any producer could write them.

``RawPublisher(stack).send(item)`` produces ``item.payload`` to the workload's entry topic (hostile
inputs, ``queuekit.suite.hostile``). Its producer allows 2 MB records, so the broker's own limit
(1 MiB) is what refuses the biggest ones.
"""
from __future__ import annotations

from confluent_kafka import KafkaException, Producer

from queuekit.suite.hostile import Hostile, frame_spec

from . import topology


class RawPublisher:
    def __init__(self, stack):
        self.producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap, "message.max.bytes": 2_000_000})

    def close(self) -> None:
        self.producer.flush(10)

    def send(self, item: Hostile, workload: str = "signup") -> None:
        spec = frame_spec(item, "kafka_share")
        failed: list = []
        self.producer.produce(topology.entry_topic(workload), item.payload, spec.get("key"),
                              headers=spec.get("headers"), on_delivery=lambda err, _: err and failed.append(err))
        self.producer.flush(30)
        if failed:
            raise KafkaException(failed[0])
