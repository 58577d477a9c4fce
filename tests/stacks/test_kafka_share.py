"""Kafka share groups on the real broker: the group's settings, members beyond the partition count, and
acknowledgement per poll batch (``ack=batch``)."""
from __future__ import annotations

from helpers import signups

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for


def test_group_settings_live_on_the_broker_and_every_member_beyond_partitions_is_assigned(fresh_stack):
    stack = fresh_stack("kafka_share")
    stack.start(["signup"], StackOptions(workers=3, partitions=1, max_retries=2, record_lock_ms=5000))

    config = stack.admin.group_config("qks.signup")  # read back from the broker, not from our options
    assert config["share.auto.offset.reset"] == "earliest"
    assert config["share.record.lock.duration.ms"] == "5000"
    assert config["share.delivery.count.limit"] == "3"  # max_retries + the first delivery
    assert config["errors.deadletterqueue.topic.name"] == "dlq.qks.signup"
    assert config["errors.deadletterqueue.copy.record.enable"] == "true"

    # A consumer group would leave two of these three idle; a share group assigns the one partition to all.
    members = stack.admin.members("qks.signup")
    assert len(members) == 3 and all(partitions == [0] for partitions in members.values()), members


def test_batch_acknowledgement_keeps_retries_dead_letters_and_a_crash_loses_nothing(fresh_stack, ledger):
    """``ack=batch`` (one commit per poll): the same endings as per record; a worker SIGKILLed mid-batch
    (after an effect, before the batch's commit) loses nothing, and the guard absorbs what comes back."""
    stack = fresh_stack("kafka_share")
    n = 200
    envs = signups(n, 24)
    poison, flaky, crash = 0, 1, 120
    envs[poison] = make_envelope(envs[poison].body, {"fault": "always-fail"})
    envs[flaky] = make_envelope(envs[flaky].body, {"fault": "fail-times", "n": 1})
    envs[crash] = make_envelope(envs[crash].body, {"fault": "crash", "at": "after-effect"})
    # Workers first, then the records: with the backlog published first, a worker reached the crash record
    # (and died, as the record asks) before the start's readiness check saw it consuming (seen in CI).
    stack.start(["signup"], StackOptions(workers=2, partitions=1, max_retries=2, ack="batch"))
    stack.publish("signup", envs)
    wait_for(lambda: len(ledger.effects(service="signup")) >= n - 1, timeout=120,
             what=f"{n - 1} sign-ups applied (all but the poison)")
    stack.drain("signup")

    keys = [e.key for e in envs]
    assert sorted(e.key for e in ledger.effects(service="signup")) == sorted(keys[1:])  # none lost ...
    assert ledger.duplicates("signup") == {}  # ... none twice
    assert [a.attempt for a in ledger.attempts_for("signup", keys[flaky])] == [1, 2]  # RELEASEd, then done
    assert len(ledger.attempts_for("signup", keys[crash])) >= 2  # its worker died before the batch's commit
    [dead] = [d for d in stack.dead_letters("signup") if envs[poison].id.encode() in d.payload]
    assert "PermanentError" in dead.reason
    # The redelivery window, as observed: batch-mates handled before the crash that came back.
    again = sum(1 for k in keys if len(ledger.attempts_for("signup", k)) > 1) - 2
    print(f"ack=batch: {again} record(s) of the crashed worker's batch delivered again (guard absorbed them)")
