"""`queuekit tool`: the brokers' own tools run against the kit's brokers (node, cookie, bootstrap filled in)."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pika
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "queuekit", "tool", *args], capture_output=True, text=True,
                          timeout=180)


def test_rabbitmqctl_and_rabbitmqadmin_see_a_queue_we_declared(kit):
    name = f"qk.tool-test.{uuid.uuid4().hex[:6]}"
    conn = pika.BlockingConnection(pika.URLParameters(kit.pika_url))
    try:
        ch = conn.channel()
        ch.queue_declare(name, durable=False)
        ch.basic_publish("", name, b"x")
        ctl = tool("rabbitmqctl", "list_queues", "name", "messages")
        assert ctl.returncode == 0, ctl.stderr
        assert f"{name}\t1" in ctl.stdout
        admin = tool("rabbitmqadmin", "list", "queues", "name")
        assert admin.returncode == 0, admin.stderr
        assert name in admin.stdout
    finally:
        conn.channel().queue_delete(name)
        conn.close()


def test_kafka_consumer_groups_describes_a_group_we_committed(kit):
    topic, group = f"qk.tool-test.{uuid.uuid4().hex[:6]}", f"qk.tool-test.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": kit.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    try:
        producer = Producer({"bootstrap.servers": kit.kafka_bootstrap})
        for i in range(3):
            producer.produce(topic, b"x%d" % i)
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": kit.kafka_bootstrap, "group.id": group,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        got = []
        while len(got) < 2:
            msg = consumer.poll(10)
            assert msg is not None, "no record within 10 s"
            got.append(msg)
        consumer.commit(got[-1], asynchronous=False)  # committed offset 2 of 3: lag 1
        consumer.close()
        described = tool("kafka-consumer-groups", "--describe", "--group", group)
        assert described.returncode == 0, described.stderr
        row = next(line.split() for line in described.stdout.splitlines() if line.startswith(group))
        assert row[1:6] == [topic, "0", "2", "3", "1"]  # topic, partition, current offset, log end, lag
        assert "WARN" not in described.stdout  # the tool's logs went to its log file
    finally:
        admin.delete_topics([topic])[topic].result(30)
