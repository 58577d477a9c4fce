"""Celery-only checks on the real RabbitMQ: frames Celery itself cannot decode, and the exact dead-letter reasons.

The delivery contract every stack keeps (retries, fan-out, SIGKILL, full queues) is in tests/contract/.
"""
from __future__ import annotations

import json

import pytest
from helpers import BAD_TYPE, NOT_UTF8, payload_of, signups
from kombu import Connection

from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for

PLAIN = b"plain text, not a Celery message"
BAD_BODY = json.dumps("a task header over a body that is not [args, kwargs, embed]").encode()


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("celery")


def test_frames_celery_cannot_decode_are_dead_lettered_not_dropped(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1, max_retries=2, backoff_ms=20))
    poison, flaky = signups(2, 11, {"fault": "always-fail"}, {"fault": "fail-times", "n": 9})  # 9 > retries
    stack.publish_raw("signup", BAD_TYPE)
    stack.publish_raw("signup", NOT_UTF8)  # a valid Celery message whose argument is not UTF-8
    with Connection(kit.amqp_url) as conn:  # frames that are not Celery task messages, straight onto the queue
        producer = conn.Producer()
        # stock Celery logs this one CRITICAL and acks it: gone
        producer.publish(PLAIN, routing_key="celery.signup", content_type="text/plain", content_encoding="utf-8")
        # stock Celery 5.7 dies on this one ("Unrecoverable error"), and so would every worker after it
        producer.publish(BAD_BODY, routing_key="celery.signup", content_type="application/json",
                         content_encoding="utf-8", headers={"task": "signup", "id": "bad-body"})
    stack.publish("signup", [poison, flaky])

    wait_for(lambda: len(stack.dead_letters("signup")) >= 6, timeout=30, what="6 dead letters",
             describe=lambda: str(stack.dead_letters("signup")))
    dead = {d.payload: d.reason for d in stack.dead_letters("signup")}
    assert len(dead) == 6
    # the kit's Celery consumer writes these reasons itself (RabbitMQ's x-death only says "rejected")
    assert dead[BAD_TYPE] == "MalformedMessage: field 'user_id' must be int"
    assert dead[NOT_UTF8] == "MalformedMessage: not UTF-8"
    assert dead[payload_of(poison, dead)] == "PermanentError: injected permanent failure"
    assert dead[payload_of(flaky, dead)] == "retries exhausted after 3 attempts: TransientError: injected failure 3/9"
    assert "not a Celery task message" in dead[PLAIN] and "task 'signup'" in dead[BAD_BODY]
    assert stack.pool.alive(0)  # the worker survived the bad body
    assert len(ledger.attempts_for("signup", poison.key)) == 1  # never retried
    assert len(ledger.attempts_for("signup", flaky.key)) == 3  # 1 + max_retries
    stack.drain("signup", timeout=30)
