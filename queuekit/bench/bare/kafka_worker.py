"""A plain confluent-kafka consumer group member per slot: poll, work, store the offset after the work.

``python -m queuekit.bench.bare.kafka_worker TOPIC GROUP``. ``concurrency``
threads per process, each its own Consumer (as the kit's stack runs its
slots); at-least-once exactly as ``kafka_app/offsets.py``: the offset is
stored after processing and auto-committed every 200 ms.
"""
from __future__ import annotations

import signal
import sys
import threading

from confluent_kafka import Consumer

from queuekit.core.config import Settings
from queuekit.core.options import options_from_env

from .work import work


def consume(bootstrap: str, topic: str, group: str, stop: threading.Event) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.offset.store": False,  # stored by us, after the work
        "auto.commit.interval.ms": 200,  # the kit's commit cadence
        "partition.assignment.strategy": "cooperative-sticky",
    })
    consumer.subscribe([topic])
    while not stop.is_set():
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        work(msg.value() or b"")
        consumer.store_offsets(msg)  # after processing: a crash before this re-delivers (at-least-once)
    consumer.close()


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
