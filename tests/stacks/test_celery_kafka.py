"""Celery over kombu's confluentkafka transport: what the transport does that a RabbitMQ user would not expect."""
from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from celery_app import kafka, topology
from celery_app.app import make_app
from queuekit.core.envelope import encode, make_envelope
from queuekit.core.options import StackOptions
from queuekit.stacks.kafka import Admin
from workloads import WORKLOADS


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("celery_kafka")


def records_in(kit, topic: str) -> int:
    """High watermark minus low, summed over the topic's partitions: every record the topic holds."""
    from confluent_kafka import Consumer

    admin = Admin(kit)
    reader = Consumer({"bootstrap.servers": kit.kafka_bootstrap, "group.id": "celery.test-reader"})
    try:
        marks = [reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in admin.partitions(topic)]
    finally:
        reader.close()
    return sum(high - low for low, high in marks)


def test_a_publish_to_the_fanout_exchange_returns_and_reaches_no_topic(stack, kit):
    stack.start(["tracking"], StackOptions(workers=1))
    [event] = [make_envelope(m) for m in WORKLOADS["tracking"].make_messages(1, seed=9)]
    app = make_app(stack.options, broker_url=kafka.broker_url(kit))  # celery_app's routes: tracking.event -> fanout
    with app.producer_or_acquire() as producer:
        app.signature(topology.TRACKING_TASK, args=[encode(event).decode()]).apply_async(producer=producer)  # no error
    app.close()
    report = stack.publish("tracking", [event])  # the stack's way: one task per subscriber queue
    assert report.broker_messages == 2
    stack.drain("tracking", timeout=60)
    # only the stack's two copies exist: the fanout publish was flushed first and went nowhere
    assert [records_in(kit, topology.queue_name(s)) for s in WORKLOADS["tracking"].services] == [1, 1]
