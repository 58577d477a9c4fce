"""The Redis cluster topology: a primary, 2 replicas, 3 Sentinels; clients find the primary through them,
and a SIGKILLed primary is replaced by a promoted replica."""
from __future__ import annotations

import os
import time

import psutil
import pytest

from queuekit import brokers
from queuekit.brokers.faults import Faults, redis_primary, split_nodes
from queuekit.brokers.netlab import NetLab
from queuekit.brokers.redis_cluster import RedisCluster
from queuekit.core.config import Settings
from queuekit.core.redis_client import connect, sentinel
from queuekit.core.waiting import wait_for

PROMOTION_DEADLINE = 30.0  # down-after 3 s + election + promotion: seconds in practice (measured: see docs/redis.md)


@pytest.fixture(scope="module")
def redis_cluster() -> Settings:
    s = Settings.from_env().with_(topology="cluster")
    if s.mode != "local" or s.external_redis_url:
        pytest.skip("the cluster topology is started by the kit; not applicable to an external Redis")
    started = brokers.up(s, ("redis",))
    yield s
    if started:
        brokers.down(s, ("redis",))


@pytest.mark.brokers
def test_redis_cluster_is_one_primary_two_replicas_three_sentinels(redis_cluster):
    cluster = RedisCluster(redis_cluster)
    # Polled, not asserted once: on a loaded machine one Sentinel's answer can miss the 2 s client timeout.
    # Whole: the three Sentinels name one primary and see each other, and it has both replicas online.
    wait_for(lambda: not cluster.problems(), timeout=30, what="the Redis cluster whole",
             describe=lambda: "; ".join(cluster.problems()))
    client = connect(redis_cluster)  # through the Sentinels: nobody told it where the primary is
    client.set("qk:test:replicated", "yes")
    assert client.wait(2, 15000) == 2  # both replicas acknowledged it
    for n in cluster.nodes:
        with n.client() as c:
            assert c.get("qk:test:replicated") == "yes"
            assert c.config_get("appendfsync") == {"appendfsync": "everysec"}
    client.delete("qk:test:replicated")
    for n in cluster.nodes:  # no process's command line holds the password (configs are 0600 files)
        for pid in n.pids() + n.sentinel_proc.tree_pids():
            assert redis_cluster.redis_password not in " ".join(psutil.Process(pid).cmdline())
        assert oct((n.dir / "sentinel.conf").stat().st_mode & 0o777) == "0o600"


@pytest.mark.brokers
def test_redis_sentinels_promote_a_replica_when_the_primary_is_killed(redis_cluster):
    s = redis_cluster
    old = redis_primary(s)
    faults = Faults(s)
    record = faults.inject("kill", "redis", old)
    t0 = time.monotonic()
    try:
        new = wait_for(lambda: (i,) if (i := _primary_or_none(s)) not in (None, old) else None,
                       timeout=PROMOTION_DEADLINE, what=f"the Sentinels to promote a replica after node {old + 1} died",
                       describe=lambda: f"Sentinels name {RedisCluster(s).primaries()}")[0]
        promoted_after = time.monotonic() - t0
        client = connect(s)
        # The client follows the Sentinels to the new primary. It asks them in turn, and one slower to hear of
        # the promotion may still name the dead primary for a moment (seen in CI: connection refused at the old
        # address after the majority had promoted): the write must land within the deadline, not at once.
        wait_for(lambda: client.set("qk:test:after-failover", "1"), timeout=PROMOTION_DEADLINE,
                 what=f"a write through the Sentinels to reach the new primary (node {new + 1})",
                 describe=lambda: f"Sentinels name {RedisCluster(s).primaries()}")
        new_address = RedisCluster(s).nodes[new].node.address
        wait_for(lambda: sentinel(s).discover_master("queuekit")[0] == new_address, timeout=PROMOTION_DEADLINE,
                 what=f"the Sentinels a client asks to name node {new + 1}",
                 describe=lambda: f"Sentinels name {RedisCluster(s).primaries()}")
        client.delete("qk:test:after-failover")
        # The Sentinels re-point the other replica at the new primary before the old one returns.
        wait_for(lambda: _online_replicas(s, new) == 1, timeout=PROMOTION_DEADLINE,
                 what=f"the remaining replica to follow the new primary (node {new + 1})")
    finally:
        faults.heal(record)  # the old primary restarts on its data...
    # ...and the Sentinels make it a replica of the new one: the cluster is whole again.
    wait_for(lambda: not split_nodes(s, "redis"), timeout=60, what="the old primary back as a replica",
             describe=lambda: "; ".join(RedisCluster(s).problems()))
    print(f"promoted node {new + 1} {promoted_after:.1f} s after the kill")  # shown with -s; docs/redis.md
    assert redis_primary(s) == new


def _online_replicas(s: Settings, index: int) -> int:
    with RedisCluster(s).nodes[index].client() as c:
        info = c.info("replication")
    return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v["state"] == "online")


def _primary_or_none(s: Settings) -> int | None:
    try:
        return redis_primary(s)
    except Exception:  # noqa: BLE001 - no majority yet
        return None


@pytest.mark.brokers
@pytest.mark.cluster_down  # after every other cluster test: it may stop the session's Redis cluster
def test_redis_cluster_down_leaves_no_process_or_namespace(redis_cluster):
    cluster = RedisCluster(redis_cluster)
    pids = [pid for n in cluster.nodes for pid in n.pids() + n.sentinel_proc.tree_pids()]
    assert len(pids) >= 6
    brokers.down(redis_cluster, ("redis",))
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    net = NetLab(redis_cluster)
    assert [ns for ns in net.namespaces() if ns.startswith(f"{net.prefix}d")] == []
    assert not any((n.dir / "data").exists() for n in cluster.nodes)
    assert os.path.isdir(redis_cluster.run_dir)
