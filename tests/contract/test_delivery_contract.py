"""The delivery contract, one set of tests run on every registered stack (kombu's t/integration/common.py).

What each stack must do is derived from its declared capabilities
(``pull_based``, ``ack_on_receipt_possible``, ``per_key_order``), so a new
stack runs this file without editing it. The retry timing windows belong to
each framework: each stack declares them (``Stack.retry_timing``).
Framework-only checks (Celery's bad frames, Dramatiq's prefetch, Kafka's DLQ
headers, fencing and transactions) live in ``tests/stacks/``.
"""
from __future__ import annotations

import psutil
from helpers import BAD_TYPE, NOT_UTF8, payload_of, signups

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.suite.runner import broker_version
from workloads import WORKLOADS


def caps(stack):
    """What the stack is on the node the test runs against (``capabilities_since``: rabbitmq_stream is a
    consumer group from 3.11), as the scenario runner judges its cells."""
    return type(stack).capabilities_on(broker_version(stack.settings, stack.broker))


def test_dead_letters_keep_the_bytes_and_say_why(stack, ledger):
    stack.start(["signup"], StackOptions(workers=1, max_retries=2, backoff_ms=20))
    poison, flaky, *good = signups(4, 11, {"fault": "always-fail"}, {"fault": "fail-times", "n": 9})  # 9 > retries
    stack.publish_raw("signup", BAD_TYPE)
    stack.publish_raw("signup", NOT_UTF8)
    stack.publish("signup", [poison, flaky, *good])

    wait_for(lambda: len(stack.dead_letters("signup")) >= 4, timeout=30, what="4 dead letters",
             describe=lambda: str(stack.dead_letters("signup")))
    wait_for(lambda: len(ledger.effects(service="signup")) == 2, timeout=30, what="the 2 good messages' effects")
    stack.drain("signup", timeout=30)
    dead = {d.payload: d.reason for d in stack.dead_letters("signup")}
    assert len(dead) == 4 and stack.dead_letters("signup") == stack.dead_letters("signup")  # reading does not consume
    assert "field 'user_id' must be int" in dead[BAD_TYPE]  # the original bytes, and what is wrong with them
    assert "not UTF-8" in dead[NOT_UTF8]
    assert dead[payload_of(poison, dead)].endswith("PermanentError: injected permanent failure")
    assert dead[payload_of(flaky, dead)].endswith("TransientError: injected failure 3/9")  # the LAST attempt's error
    assert len(ledger.attempts_for("signup", poison.key)) == 1  # a poison message is never retried
    assert len(ledger.attempts_for("signup", flaky.key)) == 3  # 1 + max_retries
    assert sorted(e.key for e in ledger.effects(service="signup")) == sorted(e.key for e in good)


def test_transient_failures_are_retried_with_growing_backoff(stack, ledger):
    timing = stack.retry_timing  # how the framework spaces its retries, as measured (declared on its Stack)
    stack.start(["signup"], StackOptions(workers=1, max_retries=3, backoff_ms=timing.backoff_ms))
    flaky, *good = signups(3, 21, {"fault": "fail-times", "n": 2})
    assert stack.publish("signup", [flaky, *good]).confirmed == 3

    wait_for(lambda: len(ledger.effects(service="signup")) == 3, timeout=30, what="3 effects, 1 after 2 failures")
    stack.drain("signup", timeout=30)
    attempts = ledger.attempts_for("signup", flaky.key)
    assert [a.outcome for a in attempts] == ["error", "error", "ok"]
    gaps = [later.started_at - (earlier.started_at if timing.measured_from == "start" else earlier.finished_at)
            for earlier, later in zip(attempts, attempts[1:])]
    for gap, (low, high) in zip(gaps, (timing.first, timing.second)):
        assert gap >= low and (high is None or gap < high), (gaps, timing)  # the delay grows
    assert stack.dead_letters("signup") == [] and stack.backlog("signup") == 0


def test_fan_out_reaches_every_service_in_key_order_where_declared(stack, ledger):
    spec = WORKLOADS["tracking"]
    stack.start(["tracking"], StackOptions(workers=2, concurrency=2, partitions=4))
    events = [make_envelope(m) for m in spec.make_messages(120, seed=3)]
    stack.publish("tracking", events)

    wait_for(lambda: all(len(ledger.effects(service=s)) == 120 for s in spec.services), timeout=30,
             what="120 effects per tracking service")
    stack.drain("tracking", timeout=30)
    for service in spec.services:
        assert ledger.duplicates(service) == {}
        if caps(stack).per_key_order:  # key = user: one partition, one reader, in order
            assert ledger.order_violations(service) == 0


def test_a_retry_stays_in_its_own_service(stack, ledger):
    stack.start(["tracking"], StackOptions(workers=2, concurrency=2, backoff_ms=50))
    first, *rest = WORKLOADS["tracking"].make_messages(11, seed=31)
    flaky = make_envelope(first, {"fault": "fail-times", "n": 1, "service": "tracking.analytics"})
    stack.publish("tracking", [flaky, *(make_envelope(m) for m in rest)])
    services = WORKLOADS["tracking"].services
    wait_for(lambda: all(len(ledger.effects(service=s)) == 11 for s in services), timeout=30,
             what="11 effects per tracking service")
    stack.drain("tracking", timeout=30)
    # competing consumers share a service's messages: one reader each; a stream's readers each read them all
    readers = 1 if caps(stack).competing_consumers else 2
    assert len(ledger.attempts_for("tracking.analytics", flaky.key)) == readers + 1  # + the one retry
    assert len(ledger.attempts_for("tracking.recommendations", flaky.key)) == readers  # the retry did not fan out


def _kill_the_holder(stack, ledger, slow):
    holder = wait_for(lambda: ledger.attempts_for("signup", slow.key), timeout=20, what="the slow attempt")[0]
    pid = stack.kill_worker(stack.worker_index(holder.worker))
    assert pid == holder.pid  # the killed process is the one that held the message
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert pid not in stack.worker_pids() and len(stack.worker_pids()) == 1
    return holder


def test_sigkill_mid_task_redelivers_with_the_ack_after_the_work(stack, ledger):
    stack.start(["signup"], StackOptions(workers=2, prefetch=1, partitions=2))
    slow, *quick = signups(6, 41, {"fault": "slow", "seconds": 2.0})
    stack.publish("signup", [slow])
    holder = _kill_the_holder(stack, ledger, slow)
    stack.publish("signup", quick)

    # a queue requeues what the dead connection held; a group hands the partition to the survivor after
    # the session timeout, from the last committed offset
    wait_for(lambda: len({e.key for e in ledger.effects(service="signup")}) == 6, timeout=40,
             what="every signup applied despite the kill")
    stack.drain("signup", timeout=30)
    attempts = ledger.attempts_for("signup", slow.key)
    assert [a.outcome for a in attempts] == [None, "ok"] and attempts[1].worker != holder.worker
    assert ledger.duplicates("signup") == {}  # re-deliveries of applied messages are absorbed by the guard


def test_sigkill_with_the_ack_on_receipt_loses_the_task_where_that_mode_exists(stack, ledger):
    stack.start(["signup"], StackOptions(workers=2, prefetch=1, partitions=2, early_ack=True))
    slow, *later = signups(4, 42, {"fault": "slow", "seconds": 2.0})
    stack.publish("signup", [slow])
    _kill_the_holder(stack, ledger, slow)
    stack.publish("signup", later)

    wait_for(lambda: len({e.key for e in ledger.effects(service="signup")} - {slow.key}) == 3, timeout=40,
             what="3 later effects")
    stack.drain("signup", timeout=30)
    outcomes = [a.outcome for a in ledger.attempts_for("signup", slow.key)]
    if caps(stack).ack_on_receipt_possible and caps(stack).competing_consumers:
        assert outcomes == [None]  # acked before it ran: gone with the worker
    else:  # no such mode (the option is ignored): redelivered like any unacked message; or, on a stream,
        assert outcomes == [None, "ok"]  # the survivor reads its own copy at its own offset
    assert stack.backlog("signup") == 0


def test_a_full_queue_refuses_the_publisher_or_the_lag_grows(stack, ledger):
    stack.start(["signup"], StackOptions(workers=1, prefetch=1, queue_max_length=3, partitions=1))
    [slow] = signups(1, 51, fault="slow", seconds=3.0)
    stack.publish("signup", [slow])
    wait_for(lambda: ledger.attempts(service="signup"), timeout=20, what="the worker busy on the slow one")
    report = stack.publish("signup", signups(6, 52))
    if caps(stack).pull_based:  # nothing refuses a producer; consumers fall behind
        assert (report.confirmed, report.refused) == (6, 0)
        # the broker's lag view trails the publish (a stream's end is read by a watcher): poll it, while the
        # slow task (3 s) still holds the one consumer
        wait_for(lambda: stack.backlog("signup") >= 6, timeout=2.5, what="a lag of 6 behind the busy consumer",
                 describe=lambda: f"lag {stack.backlog('signup')}")
        settled = 7
    else:  # x-max-length with reject-publish: the broker nacks what does not fit
        # A quorum queue turns to rejecting once it is OVER its limit: one more gets in (measured: 4 of 6 here,
        # 11 of 30 with a limit of 10); a classic queue stops at the limit.
        accepted = 3 + (stack.options.queue_type == "quorum")
        assert (report.confirmed, report.refused) == (accepted, 6 - accepted)
        settled = 1 + accepted
    wait_for(lambda: len(ledger.effects(service="signup")) == settled, timeout=30,
             what=f"{settled} effects (the slow one and those accepted)")
    stack.drain("signup", timeout=30)
    assert ledger.in_flight_max(service="signup") == 1

