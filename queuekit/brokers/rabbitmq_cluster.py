"""Three RabbitMQ nodes clustered, each in a network namespace of its own (see netlab.py).

Each node is Debian's rabbitmq-server with a private directory
(``$QUEUEKIT_HOME/run*/cluster/rabbitmq-<i>``), long node name
``queuekit@<its address>`` and the same Erlang cookie. Erlang distribution in a
namespace: the node's own epmd (port 4369 is private to the namespace, so
nothing is shared with the kits on 127.0.0.1), bound to the node's address;
distribution listens on that address only (``inet_dist_use_interface``).

QUEUEKIT_RABBITMQ_VERSION=4.x runs each node from the kit's Debian root (rabbitmq_root.py): the same
scripts inside ``ip netns exec`` + ``unshare --mount`` + ``chroot``. There the epmd the node starts lives
in the node's mount namespace too, and keeps it until ``down`` kills what is left in the network namespace.
4.3 keeps its metadata in Khepri (Raft; Mnesia is gone), 4.0 in Mnesia unless the feature flag is enabled.

Clustering is classic-config peer discovery: node 1 boots first and is the
seed; nodes 2 and 3 find it in their config and join (no ``rabbitmqctl
join_cluster``, so no CLI node needs to reach into the namespaces). ``down``
removes the nodes' databases: every ``up`` forms a fresh cluster.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from queuekit.core.config import CLUSTER_SIZE, Settings, private_dir, write_private
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for

from .base import Say, Status
from .netlab import NetLab, Node
from .process import ManagedProcess, elapsed
from .rabbitmq import PLUGINS, RABBIT_BIN, READY_TIMEOUT, install_rabbitmq
from .rabbitmq_root import HOST_VERSION, in_root, provision_root, resolve_version, root_dir

# Net tick: a silent peer is declared down after 3/4..5/4 of this (default 60 s, i.e. up to
# 75 s). 10 s makes a partition visible in ~10 s, so a pause/partition scenario fits CI.
NET_TICKTIME = 10


def _cluster_cookie(settings: Settings) -> str:
    """The cluster's Erlang cookie: random, made once per install, shared by its three nodes."""
    path = private_dir(settings.run_dir / "cluster") / "erlang.cookie"
    if not path.exists():
        write_private(path, secrets.token_hex(20).upper())
    return path.read_text()


class RabbitNode:
    def __init__(self, settings: Settings, node: Node, peers: list[str]):
        self.settings, self.node, self.peers = settings, node, peers
        self.dir = settings.run_dir / "cluster" / f"rabbitmq-{node.index + 1}"
        self.proc = ManagedProcess("rabbitmq", self.dir)
        self.name = f"queuekit@{node.address}"
        self.mgmt_url = settings.mgmt_urls[node.index]
        version = resolve_version(settings.rabbitmq_version)
        self.root = None if version == HOST_VERSION else root_dir(settings, version)

    def _write_config(self) -> None:
        p, addr = self.settings.ports, self.node.address
        for sub in ("mnesia", "log", "home"):
            private_dir(self.dir / sub)
        private_dir(self.dir)
        cookie = self.dir / "home" / ".erlang.cookie"
        if not cookie.exists():  # the same per-install secret on the three nodes; Erlang wants it 0400
            write_private(cookie, _cluster_cookie(self.settings))
            cookie.chmod(0o400)
        write_private(self.dir / "rabbitmq.conf", "\n".join([  # holds the password: 0600
            f"listeners.tcp.default = {addr}:{p.amqp}",
            f"management.tcp.ip = {addr}",
            f"management.tcp.port = {p.rabbit_mgmt}",
            f"stream.listeners.tcp.1 = {addr}:{p.rabbit_stream}",
            f"default_user = {self.settings.rabbit_user}",
            f"default_pass = {self.settings.rabbit_password}",
            "default_user_tags.administrator = true",
            "cluster_formation.peer_discovery_backend = classic_config",
            *(f"cluster_formation.classic_config.nodes.{i + 1} = {peer}" for i, peer in enumerate(self.peers)),
            # Classic config has no lock: a random delay staggers simultaneous first boots.
            # We boot the seed first ourselves, so the delay only costs time. (4.x has no such delay,
            # nor these keys: a node given them refuses to boot.)
            *(["cluster_formation.randomized_startup_delay_range.min = 0",
               "cluster_formation.randomized_startup_delay_range.max = 1"] if self.root is None else []),
            # On a partition the minority side pauses itself instead of carrying on as a
            # second cluster (the default `ignore` lets both sides accept writes).
            "cluster_partition_handling = pause_minority",
            "consumer_timeout = 1800000",
            "collect_statistics_interval = 500",
            "management.sample_retention_policies.global.minute = 1",
            "management.sample_retention_policies.basic.minute = 1",
            "management.sample_retention_policies.detailed.10 = 1",
            "",
        ]))
        (self.dir / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
        (self.dir / "rabbitmq-env.conf").write_text("# queuekit: all settings come from the environment\n")

    def _env(self) -> dict[str, str]:
        d, addr = self.dir, self.node.address
        erl_addr = "{" + addr.replace(".", ",") + "}"
        return {
            **os.environ,
            "HOME": str(d / "home"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_USE_LONGNAME": "true",  # node@<address>: no name resolution needed
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_DIST_PORT": str(self.settings.ports.rabbit_dist),
            "ERL_EPMD_ADDRESS": f"127.0.0.1,{addr}",  # the namespace's own epmd
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                f"-kernel inet_dist_use_interface {erl_addr} -kernel net_ticktime {NET_TICKTIME}",
        }

    def overview(self, timeout: float = 2.0) -> dict:
        r = httpx.get(f"{self.mgmt_url}/api/overview", auth=self.settings.mgmt_auth, timeout=timeout)
        r.raise_for_status()
        return r.json()

    def running_peers(self) -> int:
        r = httpx.get(f"{self.mgmt_url}/api/nodes", auth=self.settings.mgmt_auth, timeout=2.0)
        r.raise_for_status()
        return sum(1 for n in r.json() if n.get("running"))

    def ready(self) -> bool:
        try:
            return bool(self.overview().get("rabbitmq_version"))
        except httpx.HTTPError:
            return False

    def spawn(self) -> None:
        self._write_config()
        server = [str(RABBIT_BIN / "rabbitmq-server")]
        if self.root is not None:  # 4.x: inside its root, the node's directory mounted at the same path
            server = in_root(self.root, [self.dir], server)
        self.proc.spawn([*self.node.exec_prefix(), *server], env=self._env())

    def wait_ready(self) -> None:
        self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT,
                             what=f"RabbitMQ node {self.name} to serve its management API on {self.mgmt_url}")

    def pids(self) -> list[int]:
        """The node's processes (the script, beam.smp, its port programs); not epmd."""
        return self.proc.tree_pids()

    def kill(self) -> None:
        self.proc.kill(self.name)


class RabbitCluster:
    """The ``rabbitmq`` component of the cluster topology."""

    name = "rabbitmq"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.net = NetLab(settings)
        netnodes = self.net.nodes("rabbitmq")
        peers = [f"queuekit@{n.address}" for n in netnodes]
        self.nodes = [RabbitNode(settings, n, peers) for n in netnodes]

    def status(self) -> Status:
        pids = [n.proc.pid() for n in self.nodes]
        url = " ".join(self.settings.amqp_urls).replace(f"{self.settings.rabbit_password}@", "***@")
        up = [n for n in self.nodes if n.ready()]
        managed = "kit" if any(pids) else "stopped"
        if not up:
            return Status(self.name, url, managed, False, pids[0], detail="no node answers")
        running = up[0].running_peers()
        version = up[0].overview().get("rabbitmq_version")
        detail = f"{len(up)}/{CLUSTER_SIZE} nodes answer, {running} running in the cluster; pids {pids}"
        return Status(self.name, url, managed, len(up) == CLUSTER_SIZE and running == CLUSTER_SIZE,
                      pids[0], version, detail)

    def start(self, say: Say) -> bool:
        version = resolve_version(self.settings.rabbitmq_version)
        made_by = self.settings.run_dir / "cluster" / "version"  # which version the running nodes are
        if all(n.proc.pid() for n in self.nodes):
            running = made_by.read_text().strip() if made_by.exists() else HOST_VERSION
            if running != version:  # reusing it would run every cell on the other version, unsaid
                raise KitError(f"the kit's RabbitMQ {running} cluster is running here, not {version}",
                               "stop it first: queuekit down --topology cluster rabbitmq")
            for n in self.nodes:
                n.wait_ready()
            return False
        if version == HOST_VERSION:
            install_rabbitmq(say)
        else:
            provision_root(self.settings, version, say)
        t0 = time.monotonic()
        if not any(n.proc.pid() for n in self.nodes):
            # No node runs: form a fresh cluster, as after `down`. A database left by a run that never got
            # to `down` (killed CI job, reboot) holds an old cluster and password; its nodes would wait for
            # each other's tables, or answer 401, instead of booting.
            for n in self.nodes:
                shutil.rmtree(n.dir / "mnesia", ignore_errors=True)
        for n in self.nodes:
            self.net.ensure_node(n.node)
        private_dir(made_by.parent)
        made_by.write_text(version + "\n")
        say(f"starting a 3-node RabbitMQ {version} cluster on {', '.join(n.node.address for n in self.nodes)}…")
        seed, rest = self.nodes[0], self.nodes[1:]
        if seed.proc.pid() is None:
            seed.spawn()
        if version == HOST_VERSION:
            seed.wait_ready()  # the seed first: the others join it (classic config has no lock)
        # 4.x's peer discovery instead has a virgin node ask every listed peer and wait for them before it
        # boots (it picks one to join): a seed started alone waits there, so all three start together.
        for n in rest:
            if n.proc.pid() is None:
                n.spawn()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.wait_ready(), self.nodes))
        wait_for(lambda: seed.running_peers() == CLUSTER_SIZE, timeout=60,
                 what=f"all {CLUSTER_SIZE} RabbitMQ nodes to be running in one cluster",
                 describe=lambda: f"nodes running: {seed.running_peers()}")
        say(f"RabbitMQ cluster ready in {elapsed(t0)}")
        return True

    def stop(self, say: Say) -> bool:
        stopped = False
        self.net.heal()  # a cut left by a failed run: gone before anything stops
        for n in self.nodes:
            for pid in n.pids():  # a paused node ignores SIGTERM until it is resumed
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            stopped = any(list(pool.map(lambda n: n.proc.stop(timeout=60), self.nodes)))
        for n in self.nodes:
            self.net.remove_node(n.node)  # epmd and anything else left in the namespace
            # A cluster is a fixture: the next `up` forms a fresh one (a restarted cluster would
            # wait for whichever node stopped last before any node answers).
            shutil.rmtree(n.dir / "mnesia", ignore_errors=True)
        self.net.remove_bridge_if_unused()
        if stopped:
            say("RabbitMQ cluster stopped")
        return stopped

    def node_index(self, erlang_node: str) -> int:
        """Which of our nodes is ``queuekit@<address>`` (the management API's ``node`` / ``leader``)."""
        for n in self.nodes:
            if n.name == erlang_node:
                return n.node.index
        raise KitError(f"{erlang_node} is not a node of this cluster")

    def restart_node(self, index: int) -> None:
        n = self.nodes[index]
        if n.proc.pid() is None:
            n.spawn()
        n.wait_ready()
