"""Celery over kombu's Redis transport: what the transport does that a RabbitMQ user would not expect.

Each test starts the ``celery_redis`` stack on the kit's own Redis and observes Redis itself (SCAN,
PUBSUB CHANNELS, LLEN, the unacked hash) and the ledger, never a declared constant.
"""
from __future__ import annotations

import pytest

from celery_app import redis, topology
from queuekit.core.envelope import encode, make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS

LEASE_MS = 3000  # the visibility timeout of these runs (options.record_lock_ms): 3 s
LEASE_S = LEASE_MS / 1000


@pytest.fixture
def stack(fresh_stack):
    return fresh_stack("celery_redis")


def _keys(client) -> set[str]:
    return {k.decode() for k in client.scan_iter(count=1000)}


def test_every_key_of_a_run_is_under_the_stacks_prefix(stack, kit):
    """kombu's global_keyprefix: the queue lists, the dead-letter lists, the unacked hash and index, the
    bindings and the remote-control replies, all under ``qk:celery_redis:``. (kombu subscribes to its pub/sub
    topics by PSUBSCRIBE pattern, which Redis 7.0 does not list: those are not observed here.)"""
    client = stack.parts.client
    before = _keys(client)
    stack.start(["signup", "video", "tracking"], StackOptions(workers=2, max_retries=1, backoff_ms=50))
    [slow, failing] = [make_envelope(m, f) for m, f in zip(WORKLOADS["signup"].make_messages(2, seed=31),
                                                         [{"fault": "slow", "seconds": 2.0}, {"fault": "always-fail"}])]
    stack.publish("signup", [slow, failing])
    stack.publish("video", [make_envelope(m) for m in WORKLOADS["video"].make_messages(2, seed=32)])
    stack.publish("tracking", [make_envelope(m) for m in WORKLOADS["tracking"].make_messages(2, seed=33)])
    seen: set[str] = set()

    def held() -> bool:  # sample while the slow task is held unacked
        seen.update(_keys(client))
        return stack.parts.key("unacked") in seen

    wait_for(held, timeout=30, what="the unacked hash while a task runs", describe=lambda: f"keys {sorted(seen)}")
    for workload in ("signup", "video", "tracking"):
        stack.drain(workload, timeout=60)
    wait_for(lambda: len(stack.dead_letters("signup")) == 1, timeout=30, what="the failing task's dead letter")
    seen |= _keys(client)
    new = seen - before
    prefix = redis.key_prefix(kit)
    assert prefix == stack.parts.prefix == f"{kit.redis_prefix}celery_redis:"
    assert new and all(k.startswith(prefix) for k in new), f"outside {prefix}: {sorted(new)}"
    expected = {"unacked", "unacked_index", "celery.signup.dlq", "_kombu.binding.celery.tasks"}
    assert {prefix + k for k in expected} <= seen, f"missing {sorted({prefix + k for k in expected} - seen)}"
    stack.reset()
    assert not {k for k in _keys(client) if k.startswith(prefix)}, "reset leaves nothing under the prefix"


def test_a_publish_to_the_fanout_exchange_reaches_no_list_when_nobody_listens(stack, kit):
    """Redis fanout is PUB/SUB: with no worker subscribed at that instant the copy is gone, nothing stored.
    Why the stack sends one task per subscriber queue (its lists keep the copies until a worker comes)."""
    stack.prepare(["tracking"], StackOptions(workers=1))  # declared, no worker running
    [event] = [make_envelope(m) for m in WORKLOADS["tracking"].make_messages(1, seed=9)]
    app = stack._app()
    with app.producer_or_acquire() as producer:  # celery_app's route for tracking.event: the fanout exchange
        app.signature(topology.TRACKING_TASK, args=[encode(event).decode()]).apply_async(
            producer=producer, exchange=topology.TRACKING.name, exchange_type="fanout", routing_key="")
    lists = [stack.parts.key(topology.queue_name(s)) for s in WORKLOADS["tracking"].services]
    assert [stack.parts.client.llen(q) for q in lists] == [0, 0]  # returned without an error, reached nobody
    report = stack.publish("tracking", [event])  # the stack's way
    assert report.broker_messages == 2
    assert [stack.parts.client.llen(q) for q in lists] == [1, 1]


def test_the_visibility_timeout_reruns_a_running_task_and_the_first_ack_clears_the_rerun(stack, ledger):
    """A task longer than the visibility timeout, its worker alive: another worker starts it again while the
    first still runs it (celery #2599, #3270, #5935, #6229 still hold on kombu 5.7). Both deliveries carry the
    same delivery tag, so the first run's ack removes the unacked entry of the second: while the second runs
    Redis holds nothing for it, and it is not restored again (a crash now would not bring it back)."""
    stack.start(["signup"], StackOptions(workers=2, record_lock_ms=LEASE_MS))
    [long_one] = [make_envelope(m, {"fault": "slow", "seconds": 5.0}) for m in WORKLOADS["signup"].make_messages(1, seed=41)]
    stack.publish("signup", [long_one])
    attempts = lambda: ledger.attempts_for("signup", long_one.key)  # noqa: E731
    wait_for(lambda: len(attempts()) >= 2, timeout=30, what="a second run of the 5 s task",
             describe=lambda: f"{len(attempts())} attempt(s)")
    first, second = attempts()[:2]
    assert first.worker != second.worker
    assert first.finished_at is None or first.finished_at > second.started_at, "the second run began mid-run"
    assert second.started_at - first.started_at >= LEASE_S - 0.2
    wait_for(lambda: attempts()[0].finished_at is not None, timeout=30, what="the first run to finish")
    if attempts()[1].finished_at is None:  # the second still runs: its unacked entry went with the first ack
        assert stack.parts.client.hlen(stack.parts.key("unacked")) == 0
    wait_for(lambda: all(a.finished_at for a in attempts()), timeout=30, what="every run to finish")
    stack.drain("signup", timeout=30)
    assert len(attempts()) == 2  # not restored a third time
    assert len([e for e in ledger.effects(service="signup") if e.key == long_one.key]) == 1  # the guard


def test_a_countdown_beyond_the_visibility_timeout_is_delivered_to_several_workers(stack, ledger):
    """An eta/countdown task is held unacked by the worker until it is due; past the visibility timeout Redis
    hands it to the next worker too: at the eta each holder runs it (Celery's documented caveat; the
    delayed-task entry of the issue's list). The guard keeps one effect."""
    stack.start(["signup"], StackOptions(workers=2, record_lock_ms=LEASE_MS))
    [env] = [make_envelope(m) for m in WORKLOADS["signup"].make_messages(1, seed=51)]
    stack.publish_delayed("signup", [env], delay_s=2 * LEASE_S + 1)
    effects = lambda: [e for e in ledger.effects(service="signup") if e.key == env.key]  # noqa: E731
    wait_for(lambda: effects(), timeout=40, what="the delayed task's effect")
    stack.drain("signup", timeout=30)
    assert len(ledger.attempts_for("signup", env.key)) >= 2
    assert len(effects()) == 1


@pytest.mark.parametrize("stock", [True, False], ids=["stock-kombu", "kit-transport"])
def test_an_item_that_is_not_kombus_json(stock, stack, ledger):
    """Stock kombu decodes each BRPOPed item in the worker's event loop: one non-JSON item and the worker exits
    ("Unrecoverable error"), the item gone. The kit's transport (celery_app/redis_transport.py) dead-letters it
    with its reason and the worker goes on to the next task."""
    stack.start(["signup"], StackOptions(workers=1, stock_framework=stock))
    stack.parts.client.lpush(stack.parts.key(topology.queue_name("signup")), b"hostile-not-json {")
    [env] = [make_envelope(m) for m in WORKLOADS["signup"].make_messages(1, seed=61)]
    if stock:
        wait_for(lambda: not stack.worker_pids(), timeout=30, what="the stock worker to exit")
        assert stack.parts.client.llen(stack.parts.key(topology.queue_name("signup"))) == 0  # popped, gone
        assert stack.dead_letters("signup") == []
        return
    stack.publish("signup", [env])
    wait_for(lambda: any(e.key == env.key for e in ledger.effects(service="signup")), timeout=30,
             what="the next task's effect")
    [dead] = stack.dead_letters("signup")
    assert dead.payload == b"hostile-not-json {" and dead.reason.startswith("not a kombu record: JSONDecodeError")
    assert len(stack.worker_pids()) == 1
