"""Kafka share groups on the real broker: the group's settings, and members beyond the partition count."""
from __future__ import annotations

from queuekit.core.options import StackOptions


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
