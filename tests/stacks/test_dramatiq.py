"""Dramatiq-only checks on the real RabbitMQ: a non-Dramatiq frame, and what prefetch means per queue.

The delivery contract every stack keeps (dead letters, retries, SIGKILL, full queues) is in tests/contract/.
"""
from __future__ import annotations

import pika
import pytest
from helpers import signups

from dramatiq_app import topology
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for

PLAIN = b"plain text, no Dramatiq envelope"


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("dramatiq")


def test_a_frame_that_is_not_a_dramatiq_message_reaches_the_xq(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1))
    with pika.BlockingConnection(pika.URLParameters(kit.pika_url)) as conn:  # straight onto the queue
        conn.channel().basic_publish("", topology.queue_name("signup"), PLAIN)
    wait_for(lambda: stack.dead_letters("signup"), timeout=30, what="the plain frame in .XQ")
    stack.drain("signup", timeout=30)
    [dead] = stack.dead_letters("signup")
    # Dramatiq nacks it unread; RabbitMQ's DLX moves it; the reason is read from x-death
    assert dead.payload == PLAIN and dead.reason.startswith("not a Dramatiq message")
    assert ledger.attempts(service="signup") == []


def test_prefetch_bounds_what_a_worker_holds(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1, concurrency=1, prefetch=3))
    stack.publish("signup", signups(6, 31, fault="slow", seconds=1.0))
    # the management API's counters lag by seconds: read the queue's ready count over AMQP instead
    with pika.BlockingConnection(pika.URLParameters(kit.pika_url)) as conn:
        channel = conn.channel()
        ready = lambda: channel.queue_declare(topology.queue_name("signup"), passive=True).method.message_count
        wait_for(lambda: ready() == 3, timeout=10, what="6 - 3 prefetched = 3 ready", describe=lambda: str(ready()))
    prefetch = lambda: {c["prefetch_count"] for c in stack.mgmt.channel_prefetch_unacked() if c.get("consumer_count")}
    # the queue consumer's basic_qos; its .DQ consumer has Dramatiq's 1000 x threads
    wait_for(lambda: {3, 1000} <= prefetch(), timeout=10, what="consumer channels with prefetch 3 and 1000",
             describe=lambda: str(prefetch()))
    wait_for(lambda: len(ledger.effects(service="signup")) == 6, timeout=30, what="6 effects")
    assert ledger.in_flight_max(service="signup") == 1  # one worker thread; the other 2 wait in memory
    stack.drain("signup", timeout=30)
