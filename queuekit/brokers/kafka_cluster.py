"""Three Kafka KRaft nodes, each broker + controller, each in a network namespace of its own.

Combined mode (``process.roles=broker,controller``) on purpose: three JVMs
instead of six (memory on a shared 2-core machine), and it is how small
production clusters run. The consequence is measured, not hidden: killing the
node that leads a partition can also kill the active controller, so the
failover includes a controller election (3 voters tolerate one loss).

Durability settings are the ones the scenarios argue about: replication
factor 3, ``min.insync.replicas=2`` (a topic may override it), unclean leader
election off; the internal topics (consumer offsets, transaction state, share
coordinator state) are replicated 3 ways with min ISR 2 too.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from queuekit.core.config import CLUSTER_SIZE, Settings
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for

from .base import Say, Status
from .kafka import JAVA_FIX, LOG4J2, READY_TIMEOUT, new_cluster_id, require, resolve_jars
from .netlab import NetLab, Node
from .process import ManagedProcess, elapsed

HEAP = os.environ.get("QUEUEKIT_KAFKA_CLUSTER_HEAP", "-Xms128m -Xmx512m")
# How long a follower may lag before it leaves the ISR (default 30 s). 10 s: a paused or
# cut-off follower leaves the ISR within a CI-sized fault window.
REPLICA_LAG_MS = 10_000


class KafkaNode:
    def __init__(self, settings: Settings, node: Node, voters: str):
        self.settings, self.node, self.voters = settings, node, voters
        self.node_id = node.index + 1
        self.dir = settings.run_dir / "cluster" / f"kafka-{self.node_id}"
        self.proc = ManagedProcess("kafka", self.dir)
        self.bootstrap = f"{node.address}:{settings.ports.kafka}"

    def server_properties(self) -> str:
        p, addr = self.settings.ports, self.node.address
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,  # static quorum: the three nodes
            "listeners": f"PLAINTEXT://{addr}:{p.kafka},CONTROLLER://{addr}:{p.kafka_controller}",
            "advertised.listeners": f"PLAINTEXT://{addr}:{p.kafka}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "3",
            "default.replication.factor": "3",  # every topic on every node
            "min.insync.replicas": "2",  # acks=all waits for the leader and one follower
            "unclean.leader.election.enable": "false",  # an out-of-sync replica never leads
            # No periodic move back to the preferred leader: leadership changes only because of
            # the fault under test, so a measured gap has one cause.
            "auto.leader.rebalance.enable": "false",
            "replica.lag.time.max.ms": str(REPLICA_LAG_MS),
            "offsets.topic.replication.factor": "3",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "3",
            "share.coordinator.state.topic.min.isr": "2",
            # Share groups (kafka_share): the same floors as the single node (brokers/kafka.py), so the
            # stack's own short lock / session / heartbeat are accepted here too
            "group.share.min.record.lock.duration.ms": "1000",
            "group.share.min.session.timeout.ms": "2000",
            "group.share.min.heartbeat.interval.ms": "500",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            "auto.create.topics.enable": "false",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self, libs, main: str, *args: str, heap: str = "-Xmx256m") -> list[str]:
        java = require("java", JAVA_FIX)
        return [java, *heap.split(), "-Dlog4j2.configurationFile=" + str(self.dir / "log4j2.yaml"),
                "-Dkafka.logs.dir=" + str(self.dir / "logs"), "-cp", f"{libs}/*", main, *args]

    def prepare(self, libs, cluster_id: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "server.properties").write_text(self.server_properties())
        (self.dir / "log4j2.yaml").write_text(LOG4J2.format(logs=self.dir / "logs"))
        if (self.dir / "data" / "meta.properties").exists():
            return
        done = subprocess.run(self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                                         "-c", str(self.dir / "server.properties")),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise KitError(f"kafka StorageTool format failed: {done.stderr.strip()[-200:]}",
                           f"remove {self.dir / 'data'} and run queuekit up again")

    def spawn(self, libs) -> None:
        self.proc.spawn([*self.node.exec_prefix(),
                         *self._java(libs, "kafka.Kafka", str(self.dir / "server.properties"), heap=HEAP)])

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

    def ready(self) -> bool:
        try:
            brokers = self.admin().list_topics(timeout=2).brokers
        except Exception:  # noqa: BLE001 - any client error means "not yet"
            return False
        return self.node_id in brokers

    def pids(self) -> list[int]:
        return self.proc.tree_pids()

    def kill(self) -> None:
        self.proc.kill(f"Kafka node {self.node_id}")


class KafkaCluster:
    """The ``kafka`` component of the cluster topology."""

    name = "kafka"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.net = NetLab(settings)
        netnodes = self.net.nodes("kafka")
        voters = ",".join(f"{n.index + 1}@{n.address}:{settings.ports.kafka_controller}" for n in netnodes)
        self.nodes = [KafkaNode(settings, n, voters) for n in netnodes]

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0})

    def registered(self) -> int:
        """Brokers in the cluster's metadata (as one answering node sees it)."""
        try:
            return len(self.admin().list_topics(timeout=3).brokers)
        except Exception:  # noqa: BLE001
            return 0

    def status(self) -> Status:
        pids = [n.proc.pid() for n in self.nodes]
        url = f"kafka://{self.settings.kafka_bootstrap}"
        version_file = self.nodes[0].dir / "version"
        version = version_file.read_text().strip() if version_file.exists() else None
        registered = self.registered()
        return Status(self.name, url, "kit" if any(pids) else "stopped", registered == CLUSTER_SIZE, pids[0],
                      version, f"{registered}/{CLUSTER_SIZE} brokers registered; pids {pids}")

    def start(self, say: Say) -> bool:
        if all(n.proc.pid() for n in self.nodes):
            wait_for(lambda: self.registered() == CLUSTER_SIZE, timeout=READY_TIMEOUT,
                     what="the Kafka cluster (already started) to show 3 brokers")
            return False
        libs, version = resolve_jars(self.settings, say)
        cluster_id = new_cluster_id()
        for n in self.nodes:
            self.net.ensure_node(n.node)
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # three JVMs formatting: in parallel
            list(pool.map(lambda n: n.prepare(libs, cluster_id), self.nodes))
        (self.nodes[0].dir / "version").write_text(version)
        t0 = time.monotonic()
        say(f"starting a 3-node Kafka {version} cluster (KRaft, combined) on "
            f"{', '.join(n.node.address for n in self.nodes)}…")
        for n in self.nodes:  # together: the controllers need a quorum of voters to elect a leader
            if n.proc.pid() is None:
                n.spawn(libs)
        for n in self.nodes:
            n.proc.wait_ready(n.ready, timeout=READY_TIMEOUT,
                              what=f"Kafka node {n.node_id} to register on {n.bootstrap}")
        wait_for(lambda: self.registered() == CLUSTER_SIZE, timeout=READY_TIMEOUT,
                 what="all 3 Kafka brokers to be registered")
        say(f"Kafka cluster ready in {elapsed(t0)}")
        return True

    def stop(self, say: Say) -> bool:
        self.net.heal()  # a cut left by a failed run: gone before anything stops
        for n in self.nodes:
            for pid in n.pids():
                try:
                    os.kill(pid, signal.SIGCONT)  # a paused node cannot shut down
                except OSError:
                    pass
        # All at once, 20 s grace: the last nodes cannot finish a controlled shutdown without a
        # controller quorum, and the data is removed anyway.
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            stopped = any(list(pool.map(lambda n: n.proc.stop(timeout=20), self.nodes)))
        for n in self.nodes:
            self.net.remove_node(n.node)
            shutil.rmtree(n.dir / "data", ignore_errors=True)  # every `up` formats a fresh cluster
        self.net.remove_bridge_if_unused()
        if stopped:
            say("Kafka cluster stopped")
        return stopped

    def node_index(self, broker_id: int) -> int:
        return broker_id - 1

    def restart_node(self, index: int) -> None:
        n = self.nodes[index]
        if n.proc.pid() is None:
            libs, _ = resolve_jars(self.settings, lambda _: None)
            n.spawn(libs)
        n.proc.wait_ready(n.ready, timeout=READY_TIMEOUT, what=f"Kafka node {n.node_id} to register again")
