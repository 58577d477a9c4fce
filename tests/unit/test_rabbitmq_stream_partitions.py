"""rabbitmq_stream on RabbitMQ >= 3.11 without a broker: which shape a node gets, where a key goes, what each
reader subscribes to, when the driver calls the readers settled, and the capabilities the cells are judged by."""
from __future__ import annotations

from dataclasses import replace

import pytest

from queuekit.brokers.rabbitmq_root import NEWEST_4
from queuekit.core.config import Settings
from queuekit.stacks.registry import load_stack
from rabbitmq_stream_app import partitions, readers, topology
from rabbitmq_stream_app.single_active import plan


def _settings(version: str, **more) -> Settings:
    return replace(Settings.from_env(), **{"rabbitmq_version": version, "external_amqp_url": None, "mode": "local",
                                           **more})


def test_the_shape_follows_the_nodes_version_and_someone_elses_node_keeps_the_declared_one():
    assert not partitions.partitioned(_settings("3.10"))
    assert partitions.partitioned(_settings("4.0")) and partitions.partitioned(_settings("4.3"))
    assert partitions.partitioned(_settings("4"))  # "the newest 4.x"
    assert not partitions.partitioned(_settings("4.3", external_amqp_url="amqp://elsewhere"))  # as runner judges it


def test_a_key_always_goes_to_one_partition_and_keys_spread_over_all():
    names = partitions.names("stream.tracking.events", 3)
    assert names == ["stream.tracking.events-0", "stream.tracking.events-1", "stream.tracking.events-2"]
    users = [f"user-{i}" for i in range(60)]
    first = {u: partitions.partition_of(u, names) for u in users}
    assert first == {u: partitions.partition_of(u, names) for u in users}  # stable: the key's order can be kept
    assert set(first.values()) == set(names)  # every partition gets keys


def test_a_reader_subscribes_to_its_stream_on_310_and_to_every_partition_as_one_group_on_311():
    route = topology.routes("tracking")[1]  # tracking.recommendations, a fan-out reader of the entry stream
    entry = topology.entry_stream("tracking")
    [old] = plan(route, "w1", False, entry, 3)
    assert (old.stream, old.reference, old.single_active, old.active) == (entry, f"{route.service}@w1", False, True)
    new = plan(route, "w1", True, entry, 3)
    assert [s.stream for s in new] == partitions.names(entry, 3)
    assert {s.reference for s in new} == {route.service}  # the group's offsets, shared by its members
    assert all(s.single_active and not s.active and s.properties["super-stream"] == entry for s in new)
    assert len({s.producer_name for s in new}) == 3  # publishing ids are input offsets: one name per partition
    inner = topology.routes("video")[1]  # video.thumbnail reads a pipeline stream: one active reader, no partitions
    [pipe] = plan(inner, "w1", True, topology.entry_stream("video"), 3)
    assert pipe.stream == inner.source and pipe.single_active and "super-stream" not in pipe.properties


def _reader(stream, worker, active):
    return (stream, "signup", worker, active)


def test_the_driver_waits_for_one_active_member_per_partition_spread_over_the_workers():
    parts = partitions.names(topology.entry_stream("signup"), 2)
    workers = ["w0", "w1", "w2"]
    everyone = [_reader(p, w, False) for p in parts for w in workers]
    assert not readers.settled(everyone, workers, ["signup"], True, 2)  # nobody active yet
    one_each = [(p, s, w, (p, w) in {(parts[0], "w0"), (parts[1], "w2")}) for p, s, w, _ in everyone]
    assert readers.settled(one_each, workers, ["signup"], True, 2)
    same = [(p, s, w, w == "w0") for p, s, w, _ in everyone]  # both partitions on one member: not spread yet
    assert not readers.settled(same, workers, ["signup"], True, 2)
    assert not readers.settled(one_each[1:], workers, ["signup"], True, 2)  # w0 not subscribed to partition 0
    old = [(topology.entry_stream("signup"), "signup", w, True) for w in workers]  # 3.10: every reader active
    assert readers.settled(old, workers, ["signup"], False, 2)


def test_rabbitmq_stream_is_judged_like_a_consumer_group_from_311():
    stack = load_stack("rabbitmq_stream")
    old, new = stack.capabilities_on("3.10"), stack.capabilities_on(NEWEST_4)
    assert old == stack.capabilities and not old.competing_consumers  # 3.10's column: as today
    assert new.competing_consumers and new.per_key_order and not new.work_sharing_beyond_partitions
    assert min(stack.capabilities_since, key=partitions.series) == partitions.SINCE  # one version rule for both


@pytest.mark.parametrize("scenario", ["work-distribution", "rebalance", "more-consumers-than-partitions"])
def test_the_311_change_explains_the_stream_cells_whose_expectation_changes(scenario):
    from queuekit.report.known_changes import explain
    from scenarios import BY_NAME

    stack = load_stack("rabbitmq_stream")
    assert BY_NAME[scenario].expected("rabbitmq_stream", stack.capabilities_on("3.10")) != \
        BY_NAME[scenario].expected("rabbitmq_stream", stack.capabilities_on(NEWEST_4))
    row = {"scenario": scenario, "stack": "rabbitmq_stream", "changed": [], "expectation_changed": True}
    assert "3.11" in {k.since for k in explain(row, "3.10.8", "4.3.6")}
