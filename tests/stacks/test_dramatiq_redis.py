"""Dramatiq's RedisBroker on the kit's real Redis: where its keys live, what an ack and a heartbeat really do.

The delivery contract every stack keeps is in tests/contract/; these are RedisBroker's own facts.
"""
from __future__ import annotations

import time
import uuid

import pytest
from helpers import signups

from dramatiq_app import actors, redis_observe, topology
from dramatiq_app.redis_broker import HEARTBEAT_TIMEOUT_MS, namespace
from queuekit.core.envelope import encode
from queuekit.core.options import StackOptions
from queuekit.core.redis_keys import glob_escape
from queuekit.core.waiting import wait_for

SIGNUP = topology.queue_name("signup")


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("dramatiq_redis")


def _keys(client, pattern: str = "*") -> set[str]:
    return {k.decode() for k in client.scan_iter(match=pattern, count=1000)}


def test_every_key_is_under_the_stacks_prefix_and_reset_leaves_foreign_keys(stack, ledger, kit):
    client = stack.parts.client
    foreign = {f"foreign:{uuid.uuid4().hex}": "theirs", f"{kit.redis_prefix}celery_redis:{uuid.uuid4().hex}": "another stack's",
               f"dramatiq:{SIGNUP}": "a stock Dramatiq app's queue"}
    for key, value in foreign.items():
        client.set(key, value)
    try:
        before = _keys(client)
        stack.start(["signup"], StackOptions(workers=2, max_retries=1, backoff_ms=50))
        stack.publish("signup", signups(5, 41, {"fault": "always-fail"}))  # a retry via Q.DQ, then a dead letter
        during = _keys(client)  # lists and hashes vanish when emptied: look while they hold something too
        wait_for(lambda: len(ledger.effects(service="signup")) == 4 and stack.dead_letters("signup"), timeout=30,
                 what="4 signup effects and a dead letter")
        stack.drain("signup", timeout=30)
        made, ns = (during | _keys(client)) - before, namespace(kit) + ":"
        outside = sorted(k for k in made if not k.startswith(ns))
        assert made and not outside, f"keys outside {ns}: {outside}"
        for suffix in (f"{SIGNUP}.XQ", f"{SIGNUP}.XQ.msgs", f"{SIGNUP}.XQ.reasons", "__heartbeats__"):
            assert ns + suffix in made, f"{ns + suffix} missing from {sorted(made)}"
        stack.reset()
        assert not _keys(client, glob_escape(ns) + "*")
        assert {k: client.get(k).decode() for k in foreign} == foreign
    finally:
        client.delete(*foreign)


def test_a_fetched_message_stays_in_its_workers_ack_set_until_the_actor_returned(stack, ledger, kit):
    stack.start(["signup"], StackOptions(workers=1, prefetch=1))
    [env] = signups(1, 42, {"fault": "slow", "seconds": 2.0})
    stack.publish("signup", [env])
    wait_for(lambda: ledger.attempts_for("signup", env.key), timeout=20, what="the slow task started")
    held = stack.in_flight()
    assert held == {stack.worker_name(0): 1}, held  # fetched: in the ack set, its data still in Q.msgs
    assert stack.backlog("signup") == 1 and stack.replay("signup") == 0  # nothing left in the list to fetch
    card = redis_observe.observe(kit)["signup"]  # the dashboard's view of the same keys
    assert (card.backlog, card.in_flight, card.dead_letters, card.consumers) == (1, 1, 0, 1), card
    wait_for(lambda: ledger.effects(service="signup"), timeout=20, what="the effect")
    wait_for(lambda: stack.backlog("signup") == 0, timeout=10, what="the ack: SREM + HDEL")
    assert stack.in_flight() == {stack.worker_name(0): 0} or stack.in_flight() == {}


def test_a_killed_workers_message_comes_back_only_after_the_heartbeat_timeout(stack, ledger, kit):
    """dramatiq #64/#70/#77: no ack set is returned when a worker dies, only when another consumer's maintenance
    finds its heartbeat older than ``heartbeat_timeout`` (the kit's 10 s)."""
    stack.start(["signup"], StackOptions(workers=2, prefetch=1))
    [env] = signups(1, 43, {"fault": "slow", "seconds": 1.0})
    stack.publish("signup", [env])
    stack.kill_worker_holding("signup", env.key)
    killed_at = time.monotonic()
    wait_for(lambda: len(ledger.effects(service="signup")) == 1, timeout=HEARTBEAT_TIMEOUT_MS / 1000 + 30,
             what="the killed worker's message run again by the other worker")
    back_after = time.monotonic() - killed_at
    attempts = ledger.attempts_for("signup", env.key)
    assert len(attempts) == 2 and attempts[0].worker != attempts[1].worker
    # not before the timeout (a dead worker is only known by its silence), and within a few polls of it
    assert HEARTBEAT_TIMEOUT_MS / 1000 - 1 <= back_after <= HEARTBEAT_TIMEOUT_MS / 1000 + 15, back_after
    stack.drain("signup", timeout=20)


def test_a_live_worker_keeps_a_message_longer_than_the_heartbeat_timeout(stack, ledger, kit):
    """The heartbeat is per worker process, stamped by its consumers' polls (Q.DQ's keeps polling while the actor
    runs): a task longer than the timeout is not taken back. (With a worker whose every consumer is full and idle,
    e.g. a custom setup without delay queues, it would be: see docs/redis.md.)"""
    stack.start(["signup"], StackOptions(workers=2, prefetch=1))
    [env] = signups(1, 44, {"fault": "slow", "seconds": HEARTBEAT_TIMEOUT_MS / 1000 + 3})
    stack.publish("signup", [env])
    wait_for(lambda: ledger.effects(service="signup"), timeout=HEARTBEAT_TIMEOUT_MS / 1000 + 30, what="the effect")
    stack.drain("signup", timeout=20)
    assert len(ledger.attempts_for("signup", env.key)) == 1


def test_a_frame_lying_about_its_redis_message_id_is_dead_lettered_not_stuck(stack, ledger, kit):
    """Dramatiq acks by ``options.redis_message_id``; a frame naming another id would leave its own in the ack set
    for good (and could ack someone else's). The kit's consumer finds the real field and dead-letters it."""
    stack.start(["signup"], StackOptions(workers=1))
    [env] = signups(1, 45)
    [message] = actors.entry_messages("signup", encode(env))
    real, claimed = str(uuid.uuid4()), str(uuid.uuid4())
    body = message.copy(options={"redis_message_id": claimed}).encode()
    ns, client = namespace(kit), stack.parts.client
    client.hset(f"{ns}:{SIGNUP}.msgs", real, body)
    client.rpush(f"{ns}:{SIGNUP}", real)
    wait_for(lambda: stack.dead_letters("signup"), timeout=30, what="the frame in Q.XQ")
    stack.drain("signup", timeout=20)
    [dead] = stack.dead_letters("signup")
    assert "redis_message_id" in dead.reason and dead.payload == encode(env)
    assert ledger.attempts(service="signup") == [] and stack.in_flight() in ({}, {stack.worker_name(0): 0})
