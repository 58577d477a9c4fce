"""Celery-specific delivery semantics on the real RabbitMQ: dead letters, retries, fan-out, SIGKILL, full queues."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from kombu import Connection

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

# well-formed except one type, so the reason is about that field (not a missing one)
BAD_TYPE = (b'{"id": "bad-2", "schema": "signup.requested", "version": 1, "sent_at": 0, "headers": {},'
            b' "body": {"user_id": "7", "email": "a@example.com", "idempotency_key": "k-bad"}}')
NOT_UTF8 = b"\xff\xfe not even UTF-8"
PLAIN = b"plain text, not a Celery message"
BAD_BODY = json.dumps("a task header over a body that is not [args, kwargs, embed]").encode()


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("celery")


def envelopes(workload: str, count: int, seed: int = 1, **headers):
    """Messages whose keys are unique across calls (make_messages' keys repeat between seeds)."""
    messages = WORKLOADS[workload].make_messages(count, seed=seed)
    if workload == "signup":
        messages = [replace(m, idempotency_key=f"{m.idempotency_key}-{seed}") for m in messages]
    return [make_envelope(m, headers) for m in messages]


def test_dead_letters_keep_the_bytes_and_say_why(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1, max_retries=2, backoff_ms=20))
    [poison] = envelopes("signup", 1, seed=11, fault="always-fail")
    [flaky] = envelopes("signup", 1, seed=12, fault="fail-times", n=9)  # more failures than retries
    stack.publish_raw("signup", BAD_TYPE)
    stack.publish_raw("signup", NOT_UTF8)  # a valid Celery message whose argument is not UTF-8
    with Connection(kit.amqp_url) as conn:  # frames that are not Celery task messages, straight onto the queue
        producer = conn.Producer()
        producer.publish(PLAIN, routing_key="celery.signup", content_type="text/plain", content_encoding="utf-8")
        # stock Celery 5.7 dies on this one ("Unrecoverable error"), and so would every worker after it
        producer.publish(BAD_BODY, routing_key="celery.signup", content_type="application/json",
                         content_encoding="utf-8", headers={"task": "signup", "id": "bad-body"})
    stack.publish("signup", [poison, flaky])

    wait_for(lambda: len(stack.dead_letters("signup")) >= 6, timeout=30, what="6 dead letters",
             describe=lambda: str(stack.dead_letters("signup")))
    dead = {d.payload: d.reason for d in stack.dead_letters("signup")}
    assert len(dead) == 6
    assert dead[BAD_TYPE] == "MalformedMessage: field 'user_id' must be int"
    assert dead[NOT_UTF8] == "MalformedMessage: not UTF-8"
    assert dead[_encoded(poison, dead)] == "PermanentError: injected permanent failure"
    assert dead[_encoded(flaky, dead)] == "retries exhausted after 3 attempts: TransientError: injected failure 3/9"
    assert "not a Celery task message" in dead[PLAIN] and "task 'signup'" in dead[BAD_BODY]
    assert stack.pool.alive(0)  # the worker survived the bad body
    assert len(ledger.attempts_for("signup", poison.key)) == 1  # never retried
    assert len(ledger.attempts_for("signup", flaky.key)) == 3  # 1 + max_retries
    stack.drain("signup", timeout=30)


def _encoded(env, dead) -> bytes:
    [payload] = [p for p in dead if env.id.encode() in p]
    return payload


def test_transient_failures_are_retried_with_doubling_backoff(stack, ledger):
    stack.start(["signup"], StackOptions(workers=1, max_retries=3, backoff_ms=200))
    [env] = envelopes("signup", 1, seed=21, fault="fail-times", n=2)
    stack.publish("signup", [env])
    wait_for(lambda: ledger.effects(service="signup"), timeout=30, what="the effect after 2 failures")
    starts = [a.started_at for a in ledger.attempts_for("signup", env.key)]
    assert len(starts) == 3 and len(ledger.effects(service="signup")) == 1
    first, second = starts[1] - starts[0], starts[2] - starts[1]
    assert 0.2 <= first < 0.35 and 0.4 <= second < 0.6  # countdown = 200 ms * 2**n (eta held unacked)
    assert stack.dead_letters("signup") == []


def test_fan_out_reaches_each_service_and_a_retry_only_its_own(stack, ledger):
    stack.start(["tracking"], StackOptions(workers=2, concurrency=2, backoff_ms=50))
    first, *rest = WORKLOADS["tracking"].make_messages(11, seed=31)  # keys (user-seq) repeat across seeds
    flaky = [make_envelope(first, {"fault": "fail-times", "n": 1, "service": "tracking.analytics"})]
    stack.publish("tracking", flaky + [make_envelope(m) for m in rest])  # one task message each; the fanout exchange copies it
    services = WORKLOADS["tracking"].services
    wait_for(lambda: all(len(ledger.effects(service=s)) == 11 for s in services), timeout=30,
             what="11 effects per tracking service")
    key = flaky[0].key
    assert len(ledger.attempts_for("tracking.analytics", key)) == 2
    assert len(ledger.attempts_for("tracking.recommendations", key)) == 1  # the retry did not fan out again


def test_sigkill_mid_task_redelivers_with_acks_late(stack, ledger):
    stack.start(["signup"], StackOptions(workers=2, prefetch=1))
    [slow] = envelopes("signup", 1, seed=41, fault="slow", seconds=2.0)
    stack.publish("signup", [slow])
    holder = wait_for(lambda: ledger.attempts_for("signup", slow.key), timeout=20, what="the slow attempt")[0]
    pid = stack.kill_worker(int(holder.worker.rsplit("-", 1)[1]))
    assert pid == holder.pid  # the killed process is the one that held the message
    wait_for(lambda: ledger.effects(service="signup"), timeout=30, what="the redelivered message's effect")
    attempts = ledger.attempts_for("signup", slow.key)
    assert [a.outcome for a in attempts] == [None, "ok"] and attempts[1].worker != holder.worker


def ready(kit, queue: str) -> int:
    """The queue's ready count, live over AMQP (the management API's counters lag by seconds)."""
    with Connection(kit.amqp_url) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def test_sigkill_mid_task_loses_it_with_early_ack(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=2, prefetch=1, early_ack=True))
    [slow] = envelopes("signup", 1, seed=42, fault="slow", seconds=2.0)
    stack.publish("signup", [slow])
    holder = wait_for(lambda: ledger.attempts_for("signup", slow.key), timeout=20, what="the slow attempt")[0]
    stack.kill_worker(int(holder.worker.rsplit("-", 1)[1]))
    after = envelopes("signup", 3, seed=43)  # the survivor is idle and the queue is empty: it is gone
    stack.publish("signup", after)
    wait_for(lambda: len(ledger.effects(service="signup")) == 3, timeout=30, what="3 later effects")
    assert len(ledger.attempts_for("signup", slow.key)) == 1 and ready(kit, "celery.signup") == 0


def test_full_entry_queue_refuses_publishes(stack, ledger):
    stack.start(["signup"], StackOptions(workers=1, prefetch=1, queue_max_length=3))
    stack.publish("signup", envelopes("signup", 1, seed=51, fault="slow", seconds=2.0))
    wait_for(lambda: ledger.attempts(service="signup"), timeout=20, what="the worker busy on the slow one")
    report = stack.publish("signup", envelopes("signup", 6, seed=52))
    assert (report.confirmed, report.refused) == (3, 3)
    wait_for(lambda: len(ledger.effects(service="signup")) == 4, timeout=30, what="1 slow + 3 accepted effects")
    assert ledger.in_flight_max(service="signup") == 1
