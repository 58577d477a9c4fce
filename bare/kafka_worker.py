"""A plain confluent-kafka consumer group member per slot: poll, work, store the offset after the work.

``python -m bare.kafka_worker TOPIC GROUP``. ``concurrency``
threads per process, each its own Consumer (as the kit's stack runs its
slots); at-least-once exactly as ``kafka_app/offsets.py``: the offset is
stored after processing and auto-committed every 200 ms.

Start gate (``QUEUEKIT_START_GATE``, a file the bench creates): until it
exists, every partition a member is given is paused, so the member joins the
group and fetches nothing. The bench opens the gate once the whole group is
assigned. Without it, the first member to join drained all partitions of a
4-second noop backlog before the other three were given theirs, and the bare
twin was measured with one slot against the stack's four.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from confluent_kafka import Consumer, TopicPartition

from queuekit.core.config import Settings
from queuekit.core.options import options_from_env

from . import RDKAFKA_LOG, START_GATE_ENV, Backlog
from .work import work


class StartGate:
    """Pause what is assigned until ``path`` exists; then resume everything owned, once."""

    def __init__(self, path: str | None):
        self.path = path
        self.open = path is None

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """on_assign (cooperative: an increment): take the partitions, paused while the gate is shut."""
        consumer.incremental_assign(partitions)
        if not self.open:
            consumer.pause(partitions)  # a member in the group, fetching nothing yet

    def check(self, consumer: Consumer) -> None:
        if not self.open and self.path is not None and os.path.exists(self.path):
            self.open = True
            consumer.resume(consumer.assignment())


def consume(bootstrap: str, topic: str, group: str, stop: threading.Event) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.offset.store": False,  # stored by us, after the work
        "auto.commit.interval.ms": 200,  # the kit's commit cadence
        "partition.assignment.strategy": "cooperative-sticky",
        # The kit's group timing (kafka_app/clients.py), so members hear of a rebalance within 0.5 s. With
        # librdkafka's 3 s heartbeat the four members took ~6.4 s to be assigned (the stack's: ~1.7 s); the
        # start gate keeps joins out of the measurement either way, this only shortens the wait.
        "session.timeout.ms": 2000, "heartbeat.interval.ms": 500,
    })
    gate = StartGate(os.environ.get(START_GATE_ENV))
    consumer.subscribe([topic], on_assign=gate.assigned)
    while not stop.is_set():
        gate.check(consumer)  # one flag test once open
        msg = consumer.poll(0.5 if gate.open else 0.05)
        if msg is None or msg.error():
            continue
        work(msg.value() or b"")
        consumer.store_offsets(msg)  # after processing: a crash before this re-delivers (at-least-once)
    consumer.close()



def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], topic: str,
                    partitions: int) -> Backlog:
    """The topic with ``partitions`` partitions, filled by one idempotent acks=all producer (the kit's settings)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": config.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "logger": RDKAFKA_LOG,
                         "linger.ms": 5, "partitioner": "murmur2_random"})  # the kit's producer settings
    for payload, key in zip(payloads, keys):
        while True:
            try:
                producer.produce(topic, payload.encode(), key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError(f"bare kafka: {len(producer)} records undelivered")
    group = f"{topic}.g"
    # members hold their partitions paused (the start gate) until the driver sees the whole group assigned
    return Backlog(["-m", "bare.kafka_worker", topic, group], lambda: admin.delete_topics([topic]), (group, topic))

if __name__ == "__main__":
    topic, group = sys.argv[1], sys.argv[2]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bootstrap = Settings.from_env().kafka_bootstrap
    threads = [threading.Thread(target=consume, args=(bootstrap, topic, group, stop))
               for _ in range(options_from_env().concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
