"""Celery over kombu's confluentkafka transport: what the transport does that a RabbitMQ user would not expect."""
from __future__ import annotations

import time
import uuid

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


def _held_then_restarted(url: str) -> list[str]:
    """The smallest reproduction: three messages; take m1 and m2, ack only m2 (m1 is a prefetched task not yet
    acked), close; what does the next consumer of the same group read?"""
    from kombu import Connection

    queue = f"celery.ack-probe-{uuid.uuid4().hex[:8]}"
    with Connection(url) as conn:
        q = conn.SimpleQueue(queue)
        for body in ("m1", "m2", "m3"):
            q.put(body)
        first, second = q.get(timeout=30), q.get(timeout=30)
        assert (first.payload, second.payload) == ("m1", "m2")
        second.ack()  # m1 still unacked
        q.close()
    seen = []
    with Connection(url) as conn:
        q = conn.SimpleQueue(queue)
        deadline = time.monotonic() + 60
        while "m3" not in seen and time.monotonic() < deadline:  # m3 is read either way: after it, nothing is due
            try:
                message = q.get(timeout=5)
            except q.Empty:
                continue
            seen.append(message.payload)
            message.ack()
        q.close()
    assert "m3" in seen, f"m3 never came (saw {seen})"
    return seen


def test_stock_kombu_commits_past_an_unacked_message(kit):
    """Upstream kombu 5.7: QoS.ack() is consumer.commit() with no offsets (the whole position), and
    restore_unacked_once() does nothing, so m1 is never read again: the loss behind the suite's rare
    celery_kafka losses (a warm shutdown, a consumer restart or a rebalance leaves a prefetched task unacked)."""
    assert _held_then_restarted(f"confluentkafka://{kit.kafka_bootstrap.split(',')[0]}") == ["m3"]


def test_the_kits_transport_commits_only_up_to_the_first_unacked_message(kit):
    """The kit's QoS (celery_app/kafka_transport.py): m2's ack commits up to m1, so m1 comes back (and m2 with it:
    at-least-once, the ledger's guard absorbs the repeat)."""
    assert _held_then_restarted(kafka.broker_url(kit).split(";")[0]) == ["m1", "m2", "m3"]


def _send_refused_by_the_broker(kit, url: str) -> tuple[Exception | None, int]:
    """The smallest reproduction of a failed delivery: a topic whose max.message.bytes is 1,000, and a 5 KB task
    (librdkafka's own limit is 1 MB, so only the broker refuses it, in the delivery report). What does put() do,
    and what does the topic hold?"""
    from confluent_kafka.admin import NewTopic
    from kombu import Connection

    admin = Admin(kit)
    topic = f"celery.size-probe-{uuid.uuid4().hex[:8]}"
    for future in admin.client.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=-1, config={"max.message.bytes": "1000"})]).values():
        future.result()
    raised = None
    try:
        with Connection(url) as conn:
            q = conn.SimpleQueue(topic)
            try:
                q.put("x" * 5000)
            except Exception as exc:  # noqa: BLE001 - what put() raises is the observation
                raised = exc
            q.close()
        return raised, records_in(kit, topic)
    finally:
        for future in admin.client.delete_topics([topic]).values():
            future.result()


def test_stock_kombu_counts_a_refused_record_as_sent(kit):
    """Upstream kombu 5.7: _put() flushes and never reads the delivery report, so put() returns and the record
    does not exist (the mechanism of the suite's second celery_kafka loss: "Local: Unknown partition" from a
    producer kept across its topic's re-creation, a failure that only shows in the delivery report)."""
    raised, held = _send_refused_by_the_broker(kit, f"confluentkafka://{kit.kafka_bootstrap.split(',')[0]}")
    assert (raised, held) == (None, 0)


def test_the_kits_transport_raises_when_a_record_is_not_delivered(kit):
    """The kit's _put (celery_app/kafka_transport.py) waits for the report, tries again, then raises: refused,
    not counted as sent."""
    raised, held = _send_refused_by_the_broker(kit, kafka.broker_url(kit).split(";")[0])
    assert held == 0
    assert raised is not None and "MSG_SIZE_TOO_LARGE" in repr(raised), raised
