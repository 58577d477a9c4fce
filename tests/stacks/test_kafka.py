"""Kafka-only checks on the real broker: what a DLQ record carries besides the bytes and the reason.

The delivery contract every stack keeps (retries, fan-out in key order, SIGKILL, lag) is in tests/contract/;
transactions, fencing and long tasks in test_kafka_transactions.py.
"""
from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from helpers import BAD_TYPE, signups

from kafka_app import clients
from kafka_app.consumers import header
from kafka_app.stack import KafkaStack
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
