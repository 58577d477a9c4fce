"""Redis Streams consumer groups on the kit's real Redis: what XREADGROUP, XACK, XAUTOCLAIM and MAXLEN
really do, as the ``redis_streams`` stack relies on it (redis_streams_app/acks.py, claims.py)."""
from __future__ import annotations

from helpers import signups

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads import WORKLOADS


def _scratch(stack, name: str) -> str:
    """A throwaway stream under the stack's own prefix, recorded so the stack's purge deletes it by name."""
    key = stack.parts.key("test", name)
    stack.parts.keys.record(key)
    stack.parts.client.delete(key)
    return key


def test_an_entry_is_pending_under_its_consumer_until_acked_and_a_killed_ones_are_claimed(fresh_stack, ledger):
    stack = fresh_stack("redis_streams")
    stack.start(["signup"], StackOptions(workers=2, record_lock_ms=3000))
    [slow] = signups(1, 61, {"fault": "slow", "seconds": 2.0})
    stack.publish("signup", [slow])
    holder = wait_for(lambda: ledger.attempts_for("signup", slow.key), timeout=20, what="the slow attempt")[0]
    route = stack.topology.Route("signup")
    # XREADGROUP put it in the PEL under the holder's consumer name, delivered once: the XACK waits for the handler
    pending = stack.parts.client.xpending_range(route.source, route.group, "-", "+", 10)
    assert [(p["consumer"].decode().split(".")[0], p["times_delivered"]) for p in pending] == [(holder.worker, 1)]
    stack.kill_worker(stack.worker_index(holder.worker))
    wait_for(lambda: len({e.key for e in ledger.effects(service="signup")}) == 1, timeout=30,
             what="the killed consumer's entry claimed (min-idle 3 s) and handled by the survivor")
    stack.drain("signup", timeout=20)
    attempts = ledger.attempts_for("signup", slow.key)
    assert [a.outcome for a in attempts] == [None, "ok"] and attempts[1].worker != holder.worker
    assert stack.parts.client.xpending(route.source, route.group)["pending"] == 0


def test_early_ack_reads_with_noack_so_nothing_is_pending_while_the_handler_runs(fresh_stack, ledger):
    stack = fresh_stack("redis_streams")
    stack.start(["signup"], StackOptions(workers=1, early_ack=True))
    [slow] = signups(1, 62, {"fault": "slow", "seconds": 1.5})
    stack.publish("signup", [slow])
    wait_for(lambda: ledger.attempts_for("signup", slow.key), timeout=20, what="the slow attempt running")
    route = stack.topology.Route("signup")
    assert ledger.effects(service="signup") == []  # still inside the handler
    assert stack.parts.client.xpending(route.source, route.group)["pending"] == 0  # acknowledged on delivery
    assert stack.backlog("signup") == 0  # the broker counts it consumed already: at-most-once


def test_redis_takes_an_xack_from_a_consumer_that_no_longer_holds_the_entry(fresh_stack):
    """The first holder's late XACK settles an entry another consumer claimed: nothing checks ownership."""
    stack = fresh_stack("redis_streams")
    client, stream = stack.parts.client, _scratch(stack, "ownership")
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    entry = client.xadd(stream, {b"envelope": b"{}"})
    client.xreadgroup("g", "first", {stream: ">"}, count=1)
    claimed = client.xautoclaim(stream, "g", "second", 0, count=1)[1]
    assert [e[0] for e in claimed] == [entry]
    owner = client.xpending_range(stream, "g", "-", "+", 1)[0]
    assert owner["consumer"] == b"second" and owner["times_delivered"] == 2  # the claim counts as a delivery
    assert client.xack(stream, "g", entry) == 1  # sent by "first", who no longer holds it: accepted
    assert client.xpending(stream, "g")["pending"] == 0
    assert client.xack(stream, "g", entry) == 0  # the claimer's own XACK comes too late: 0, logged by acks.settle


def test_an_empty_xreadgroup_does_not_create_the_consumer(fresh_stack):
    """Why the worker registers its consumers with XGROUP CREATECONSUMER (readiness reads XINFO CONSUMERS)."""
    stack = fresh_stack("redis_streams")
    client, stream = stack.parts.client, _scratch(stack, "createconsumer")
    client.xgroup_create(stream, "g", id="$", mkstream=True)
    assert client.xreadgroup("g", "reader", {stream: ">"}, count=1, block=100) in ([], None, {})
    assert client.xinfo_consumers(stream, "g") == []
    client.xgroup_createconsumer(stream, "g", "reader")
    assert [c["name"] for c in client.xinfo_consumers(stream, "g")] == [b"reader"]


def test_maxlen_trims_entries_no_group_has_read_and_xautoclaim_names_pending_ones_trimmed(fresh_stack):
    """MAXLEN is by length, not consumption: a backlog over it is lost (docs/redis.md, topology.MAXLEN)."""
    stack = fresh_stack("redis_streams")
    client, stream = stack.parts.client, _scratch(stack, "trim")
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    first = client.xadd(stream, {b"envelope": b"1"})
    client.xreadgroup("g", "c", {stream: ">"}, count=1)  # pending, never acked
    for i in range(200):
        client.xadd(stream, {b"envelope": str(i).encode()}, maxlen=10, approximate=False)
    assert client.xlen(stream) == 10  # 191 entries gone, read by nobody
    info = {g["name"]: g for g in client.xinfo_groups(stream)}[b"g"]
    assert info["pending"] == 1  # the PEL still names the trimmed entry ...
    _, entries, deleted = client.xautoclaim(stream, "g", "other", 0, count=10)
    assert first in deleted and first not in [e[0] for e in entries]  # ... until a claim finds it gone
    assert client.xpending(stream, "g")["pending"] == 0


def test_replay_is_a_new_group_from_id_0_and_dead_letters_are_read_without_consuming(fresh_stack, ledger):
    stack = fresh_stack("redis_streams")
    stack.start(["signup"], StackOptions(workers=1, max_retries=0))
    poison, *good = signups(5, 63, {"fault": "always-fail"})
    stack.publish("signup", [poison, *good])
    wait_for(lambda: len(ledger.effects(service="signup")) == 4 and stack.dead_letters("signup"), timeout=30,
             what="4 effects and the dead letter")
    stack.drain("signup", timeout=20)
    assert stack.replay("signup") == 5 and stack.replay("signup") == 5  # every entry, again: nothing consumed
    route = stack.topology.Route("signup")
    assert [g["name"] for g in stack.parts.client.xinfo_groups(route.source)] == [b"signup"]  # replay group gone
    [letter] = stack.dead_letters("signup")
    assert letter.reason.endswith("PermanentError: injected permanent failure") and poison.id.encode() in letter.payload
    assert len(stack.dead_letters("signup")) == 1


def test_every_key_is_under_the_stacks_prefix_and_purge_leaves_foreign_keys(fresh_stack, ledger):
    stack = fresh_stack("redis_streams")
    client = stack.parts.client
    foreign = {"foreign:stream": "x", f"{stack.settings.redis_prefix}celery_redis:k": "y"}
    for key, value in foreign.items():
        client.set(key, value)
    before = set(client.scan_iter(match="*"))
    try:
        stack.start(["video"], StackOptions(workers=1, max_retries=0))
        stack.publish("video", [make_envelope(m) for m in WORKLOADS["video"].make_messages(3, seed=64)])
        wait_for(lambda: len(ledger.effects(service="video.notify")) == 3, timeout=30, what="3 videos through")
        made = {k.decode() for k in set(client.scan_iter(match="*")) - before}
        assert made and all(k.startswith(stack.parts.prefix) for k in made), made  # streams, the key record
        stack.reset()
        assert not list(client.scan_iter(match=stack.parts.prefix + "*"))
        assert {k: client.get(k) for k in foreign} == {k: v.encode() for k, v in foreign.items()}
    finally:
        client.delete(*foreign)


def test_the_dashboard_card_reads_lag_pending_dead_letters_and_consumers(fresh_stack, ledger):
    from redis_streams_app.observe import observe

    stack = fresh_stack("redis_streams")
    stack.start(["signup"], StackOptions(workers=2, max_retries=0))
    poison, *good = signups(6, 65, {"fault": "always-fail"})
    stack.publish("signup", [poison, *good])
    wait_for(lambda: len(ledger.effects(service="signup")) == 5 and stack.dead_letters("signup"), timeout=30,
             what="5 effects and the dead letter")
    stack.drain("signup", timeout=20)
    card = observe(stack.settings)["signup"]  # read from the broker: XINFO GROUPS / STREAM, XLEN, XREVRANGE
    assert (card.backlog, card.in_flight, card.dead_letters, card.published, card.consumed) == (0, 0, 1, 6, 6)
    assert card.consumers == 2 and card.reasons and "injected permanent failure" in card.reasons[-1]
    assert "video" not in observe(stack.settings)  # not declared: no card


def test_on_an_external_redis_the_stack_keeps_to_its_install_prefix_and_leaves_foreign_keys(kit, ledger, monkeypatch):
    """QUEUEKIT_REDIS_URL: keys under qk:<install id>:redis_streams: (workers too), foreign ones untouched,
    including a stream named like the kit's own-server layout, with a group and pending entries."""
    from queuekit.core.config import Settings
    from queuekit.stacks.registry import load_stack

    monkeypatch.setenv("QUEUEKIT_REDIS_URL", kit.redis_url)  # inherited by the workers the stack spawns
    shared = Settings.from_env().with_(home=kit.home)
    stack = load_stack("redis_streams")(shared, ledger.path)
    client = stack.parts.client
    assert shared.external("redis") and stack.parts.prefix == f"{shared.redis_prefix}redis_streams:" != "qk:redis_streams:"
    foreign = "qk:redis_streams:signup"  # the kit's own-server name: on a shared server, someone else's
    client.delete(foreign)
    client.xadd(foreign, {b"envelope": b"theirs"})
    client.xgroup_create(foreign, "signup", id="0")
    client.xreadgroup("signup", "their-consumer", {foreign: ">"}, count=1)  # pending: theirs to settle
    try:
        stack.reset()
        before = set(client.scan_iter(match="*"))
        stack.start(["signup"], StackOptions(workers=1))
        stack.publish("signup", signups(3, 66))
        wait_for(lambda: len(ledger.effects(service="signup")) == 3, timeout=30, what="3 effects on the shared Redis")
        made = {k.decode() for k in set(client.scan_iter(match="*")) - before}
        assert made and all(k.startswith(stack.parts.prefix) for k in made), made
        stack.reset()
        assert not list(client.scan_iter(match=stack.parts.prefix + "*"))
        assert client.xlen(foreign) == 1 and client.xpending(foreign, "signup")["pending"] == 1
    finally:
        stack.stop()
        client.delete(foreign)
