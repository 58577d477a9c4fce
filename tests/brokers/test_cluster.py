"""The cluster topology: three nodes per broker that form one cluster, and `down` leaves nothing behind."""
from __future__ import annotations

import httpx
import psutil
import pytest

from queuekit import brokers
from queuekit.brokers.netlab import NetLab
from queuekit.core.config import CLUSTER_SIZE


def test_cluster_settings_name_every_node(cluster_kit):
    s = cluster_kit
    hosts = s.node_addresses("rabbitmq")
    assert len(set(hosts)) == CLUSTER_SIZE
    assert [u.split("@")[1].split(":")[0] for u in s.amqp_urls] == hosts
    assert len(s.pika_urls) == CLUSTER_SIZE and all(u.endswith("/%2F") for u in s.pika_urls)
    assert s.kafka_bootstrap.count(",") == CLUSTER_SIZE - 1


def test_cluster_rabbitmq_nodes_form_one_cluster(cluster_kit):
    for url in cluster_kit.mgmt_urls:  # every node answers and sees the same three running nodes
        nodes = httpx.get(f"{url}/api/nodes", auth=cluster_kit.mgmt_auth, timeout=5).json()
        assert sorted(n["name"] for n in nodes if n["running"]) == sorted(
            f"queuekit@{h}" for h in cluster_kit.node_addresses("rabbitmq"))


def test_cluster_kafka_has_three_brokers_and_replicated_internal_topics(cluster_kit):
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": cluster_kit.kafka_bootstrap})
    assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]
    config = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")])
    values = {k: v.value for k, v in next(iter(config.values())).result().items()}
    assert values["min.insync.replicas"] == "2"
    assert values["offsets.topic.replication.factor"] == "3"
    assert values["transaction.state.log.replication.factor"] == "3"
    assert values["share.coordinator.state.topic.replication.factor"] == "3"


@pytest.mark.cluster_down
def test_cluster_down_leaves_no_node_namespace_link_or_rule(cluster_kit):
    net = NetLab(cluster_kit)
    pids = [pid for ns in net.namespaces() for pid in net.pids_in(ns)]
    assert pids, "the cluster should be running before down"
    net.cut(net.nodes("kafka")[0])  # a fault left in place: down must heal it too
    assert net.tables()

    brokers.down(cluster_kit)

    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running after down: {alive}"
    assert net.leftovers() == {"namespaces": [], "links": [], "nft tables": []}
