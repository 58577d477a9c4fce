"""`queuekit monitor --once --json` reports a backlog the test creates itself."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pika
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from queuekit.core.waiting import wait_for
from queuekit.live.monitor import snapshot


def test_snapshot_shows_a_rabbitmq_backlog(kit):
    queue = f"monitor.test.{uuid.uuid4().hex[:6]}"
    conn = pika.BlockingConnection(pika.URLParameters(kit.pika_url))
    ch = conn.channel()
    ch.queue_declare(queue, arguments={"x-expires": 120_000})
    ch.confirm_delivery()
    for i in range(7):
        ch.basic_publish("", queue, f"m{i}".encode())
    try:
        def row():
            return next((q for q in snapshot(kit)["rabbitmq"] if q["queue"] == queue), None)

        seen = wait_for(lambda: (r := row()) and r["ready"] == 7 and r, timeout=20,
                        what=f"7 ready messages on {queue} in the snapshot", describe=lambda: str(row()))
        assert seen == {"queue": queue, "ready": 7, "unacked": 0, "consumers": 0, "dead_letter": False}
    finally:
        ch.queue_delete(queue)
        conn.close()


def test_snapshot_shows_kafka_lag_and_the_cli_prints_json(kit):
    topic = f"monitor.test.{uuid.uuid4().hex[:6]}"
    group = f"{topic}.g"
    admin = AdminClient({"bootstrap.servers": kit.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kit.kafka_bootstrap, "acks": "all"})
    for i in range(10):
        producer.produce(topic, f"e{i}".encode())
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": kit.kafka_bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    taken = []
    wait_for(lambda: (m := consumer.poll(0.5)) is not None and not m.error() and taken.append(m) or len(taken) >= 4,
             timeout=30, what="4 records consumed")
    consumer.commit(taken[3], asynchronous=False)  # committed through the 4th record: lag 6
    consumer.close()
    try:
        done = subprocess.run([sys.executable, "-m", "queuekit", "monitor", "--once", "--json"],
                              capture_output=True, text=True, timeout=60, check=True)
        groups = {g["group"]: g for g in json.loads(done.stdout)["kafka"]["groups"]}
        assert groups[group]["total_lag"] == 6
        assert groups[group]["members"] == 0
    finally:
        admin.delete_topics([topic])
        admin.delete_consumer_groups([group])
