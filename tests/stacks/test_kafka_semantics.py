"""Kafka-specific delivery semantics, on the real broker: retry topic, DLQ topic, order per key, SIGKILL."""
from __future__ import annotations

import psutil
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from kafka_app import clients
from kafka_app.consumers import header
from kafka_app.stack import KafkaStack
from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

# Complete but ill-typed, so decode() objects to the type: "field 'user_id' must be int".
MALFORMED = (b'{"schema":"signup.requested","version":1,"id":"bad-1","sent_at":0,"headers":{},'
             b'"body":{"user_id":"not-an-int","email":"x@example.test","idempotency_key":"k-bad"}}')



def signups(count: int, seed: int = 11, *faults: dict, **headers) -> list:
    """``count`` sign-ups (distinct keys); the first ones get ``faults`` as headers, the rest ``headers``."""
    messages = WORKLOADS["signup"].make_messages(count, seed=seed)
    return [make_envelope(m, faults[i] if i < len(faults) else headers) for i, m in enumerate(messages)]


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


def test_transient_failures_go_through_the_retry_topic_with_doubling_backoff(kafka, ledger):
    kafka.start(["signup"], StackOptions(workers=1, backoff_ms=200, max_retries=3))
    flaky, *good = signups(6, 12, {"fault": "fail-times", "n": 2})
    assert kafka.publish("signup", [flaky, *good]).confirmed == 6

    wait_for(lambda: len(ledger.effects(service="signup")) == 6, timeout=30, what="6 signup effects")
    kafka.drain("signup", timeout=30)
    attempts = ledger.attempts_for("signup", flaky.key)
    assert [a.outcome for a in attempts] == ["error", "error", "ok"]
    gaps = [later.started_at - earlier.finished_at for earlier, later in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # backoff_ms, then doubled
    assert kafka.dead_letters("signup") == [] and kafka.backlog("signup") == 0


def test_poison_and_exhausted_retries_reach_the_dlq_topic_with_their_story(kafka, ledger):
    kafka.start(["signup"], StackOptions(workers=1, backoff_ms=50, max_retries=2))
    poison, hopeless, *good = signups(6, 21, {"fault": "always-fail"}, {"fault": "fail-times", "n": 99})
    kafka.publish("signup", [poison, hopeless, *good])
    kafka.publish_raw("signup", MALFORMED)

    wait_for(lambda: len(kafka.dead_letters("signup")) == 3, timeout=30, what="3 dead letters")
    kafka.drain("signup", timeout=30)
    by_reason = {d.reason.split(":")[0]: d for d in kafka.dead_letters("signup")}
    assert set(by_reason) == {"PermanentError", "TransientError", "MalformedMessage"}
    assert by_reason["MalformedMessage"].payload == MALFORMED
    assert "field 'user_id' must be int" in by_reason["MalformedMessage"].reason
    assert len(ledger.attempts_for("signup", poison.key)) == 1  # a poison message is never retried
    assert len(ledger.attempts_for("signup", hopeless.key)) == 3  # first attempt + max_retries
    assert len(ledger.effects(service="signup")) == 4

    records = {header(m, "reason").split(":")[0]: m for m in dlq_records(kafka, "qk.signup.dlq")}
    exhausted = records["TransientError"]
    assert header(exhausted, "attempts") == "3" and header(exhausted, "service") == "signup"
    assert header(exhausted, "original-topic") == "qk.signup"  # not the retry topic it last came from
    assert kafka.dead_letters("signup") == kafka.dead_letters("signup")  # reading does not consume


def test_tracking_fans_out_to_both_groups_in_per_user_order(kafka, ledger):
    spec = WORKLOADS["tracking"]
    kafka.start(["tracking"], StackOptions(workers=2, concurrency=2, partitions=4))
    events = [make_envelope(m) for m in spec.make_messages(120, seed=3)]
    kafka.publish("tracking", events)

    wait_for(lambda: all(len(ledger.effects(service=s)) == 120 for s in spec.services), timeout=30,
             what="120 effects per tracking service")
    kafka.drain("tracking", timeout=30)
    for service in spec.services:
        assert ledger.order_violations(service) == 0  # key = user: one partition, one member, in order
        assert ledger.duplicates(service) == {}


def test_sigkill_leaves_offsets_uncommitted_and_the_group_reprocesses_them(kafka, ledger):
    kafka.start(["signup"], StackOptions(workers=2, partitions=2))
    envelopes = signups(8, 31, fault="slow", seconds=0.5)
    kafka.publish("signup", envelopes)
    wait_for(lambda: ledger.count("attempts", worker="kafka-0") >= 1, timeout=20, what="kafka-0 to start a record")

    pid = kafka.kill_worker(0)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert pid not in kafka.worker_pids() and len(kafka.worker_pids()) == 1
    # kafka-0's partition moves to kafka-1 after the session timeout (6 s); its uncommitted records come again.
    wait_for(lambda: len({e.key for e in ledger.effects(service="signup")}) == 8, timeout=40,
             what="every signup applied despite the kill")
    kafka.drain("signup", timeout=30)
    [cut] = [a for e in envelopes for a in ledger.attempts_for("signup", e.key)
             if a.worker == "kafka-0" and a.outcome is None]  # killed mid-task: never finished
    [effect] = [e for e in ledger.effects(service="signup") if e.key == cut.key]
    assert effect.worker == "kafka-1"  # the survivor re-read the uncommitted record
    assert ledger.duplicates("signup") == {}  # re-deliveries of already applied records are absorbed by the guard
