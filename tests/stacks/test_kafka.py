"""Kafka-only checks on the real broker: what a DLQ record carries besides the bytes and the reason.

The delivery contract every stack keeps (retries, fan-out in key order, SIGKILL, lag) is in tests/contract/;
transactions, fencing and long tasks in test_kafka_transactions.py.
"""
from __future__ import annotations

import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from helpers import BAD_TYPE, signups

from kafka_app import clients
from kafka_app.consumers import header
from kafka_app.offsets import commit_before_handling
from kafka_app.stack import KafkaStack
from queuekit.core.config import kafka_prefix
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for


def dlq_records(kafka: KafkaStack, topic: str) -> list:
    """The raw DLQ records with their headers (dead_letters() keeps only service, payload, reason)."""
    reader = clients.reader(kafka.settings)
    partitions = kafka.admin.partitions(topic)
    total = sum(reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records = []

    def read_all() -> bool:
        msg = reader.poll(0.2)
        if msg is not None and not msg.error():
            records.append(msg)
        return len(records) >= total

    wait_for(read_all, timeout=20, what=f"{topic} read to its end")
    reader.close()
    return records


def test_poison_and_exhausted_retries_reach_the_dlq_topic_with_their_story(kafka, ledger):
    kafka.start(["signup"], StackOptions(workers=1, backoff_ms=50, max_retries=2))
    poison, hopeless, *good = signups(6, 21, {"fault": "always-fail"}, {"fault": "fail-times", "n": 99})
    kafka.publish("signup", [poison, hopeless, *good])
    kafka.publish_raw("signup", BAD_TYPE)

    wait_for(lambda: len(kafka.dead_letters("signup")) == 3, timeout=30, what="3 dead letters")
    kafka.drain("signup", timeout=30)
    by_reason = {d.reason.split(":")[0]: d for d in kafka.dead_letters("signup")}
    assert set(by_reason) == {"PermanentError", "TransientError", "MalformedMessage"}
    assert by_reason["MalformedMessage"].payload == BAD_TYPE
    assert "field 'user_id' must be int" in by_reason["MalformedMessage"].reason
    assert len(ledger.attempts_for("signup", poison.key)) == 1  # a poison message is never retried
    assert len(ledger.attempts_for("signup", hopeless.key)) == 3  # first attempt + max_retries
    assert len(ledger.effects(service="signup")) == 4

    records = {header(m, "reason").split(":")[0]: m for m in dlq_records(kafka, "qk.signup.dlq")}
    exhausted = records["TransientError"]
    assert header(exhausted, "attempts") == "3" and header(exhausted, "service") == "signup"
    assert header(exhausted, "original-topic") == "qk.signup"  # not the retry topic it last came from
    assert kafka.dead_letters("signup") == kafka.dead_letters("signup")  # reading does not consume


def test_an_early_commit_that_fails_says_so_and_leaves_the_record_to_the_groups_next_owner(kafka):
    """early_ack's promise: the handler runs only once the coordinator took the commit
    (``offsets.commit_before_handling``). Here the member has left the group, as after a handler longer than
    max.poll.interval.ms (a heartbeat starved past the 2 s session on a loaded machine ends the same way,
    UNKNOWN_MEMBER_ID): the commit fails, the function says so, and the record stays uncommitted for the
    group. The old code logged the failure and handled the record anyway."""
    topic = f"{kafka_prefix()}test.early-commit.{uuid.uuid4().hex[:6]}"
    kafka.admin.client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    group = f"{topic}.g"
    producer = Producer({"bootstrap.servers": kafka.settings.kafka_bootstrap})
    for value in (b"first", b"second"):
        producer.produce(topic, value)
    producer.flush(10)
    member = Consumer(clients.consumer_config(kafka.settings, group, "early", StackOptions(max_poll_interval_ms=2000)))

    def record() -> Message | None:
        msg = member.poll(0.2)
        return msg if msg is not None and not msg.error() else None

    def members() -> int:
        return len(kafka.admin.client.describe_consumer_groups([group])[group].result(10).members)

    try:
        member.subscribe([topic])
        first = wait_for(record, timeout=30, what=f"the first record of {topic}")
        assert commit_before_handling(member, first) is True  # a member of the group: committed, handle it
        second = wait_for(record, timeout=30, what="the second record")
        # no poll() while "handling" it, past max.poll.interval.ms: librdkafka takes the member out of the group
        wait_for(lambda: members() == 0, timeout=30, what=f"{group} without members", describe=lambda: f"{members()}")
        assert commit_before_handling(member, second) is False  # not committed: the caller must not handle it
        [committed] = member.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed.offset == second.offset()  # past the first record only: the second is the group's still
    finally:
        member.close()
        kafka.admin.client.delete_topics([topic])
