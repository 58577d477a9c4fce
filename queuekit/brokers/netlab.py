"""The cluster's network: one namespace per node on a private bridge, and cuts made with nftables.

Why namespaces and not 127.0.0.2/.3/.4 on ``lo``: on loopback every outgoing
connection leaves from 127.0.0.1 whatever address the process listens on
(Kafka cannot bind its outgoing replica / controller connections to an
address), so a rule cannot tell "node 2 talks to node 1" from "a client talks
to node 1". In a namespace each node has exactly one address, every packet
between nodes crosses the bridge through that node's own veth, and a cut is a
rule on interface names: precise, and a real cut for the broker (TCP
retransmits into the void, heartbeats time out).

Layout for a kit with port offset ``off`` (names are <= 15 characters):

    bridge ``qk<off>br``  198.18.<n>.1/24 in the root namespace (where the clients run)
    namespace ``qk<off><b><i>`` (b = r RabbitMQ, k Kafka, d Redis; i = 1..3) with ``eth0`` = its address,
    linked by veth ``qk<off><b><i>`` (root side, on the bridge). 198.18.0.0/15 is RFC 2544's
    benchmarking range: never routed, so no packet can leave the machine.

Faults live in one nftables table, ``bridge qk<off>fault``: deleting it heals
every cut at once, and ``queuekit down`` deletes it whatever happened before.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass

import psutil

from queuekit.core.config import CLUSTER_SIZE, Settings
from queuekit.core.errors import KitError

LETTER = {"rabbitmq": "r", "kafka": "k", "redis": "d"}
_BRIDGE_LOCK = threading.Lock()
IP_FIX = "install iproute2 and nftables (apt-get install -y iproute2 nftables) and run as root"


def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    if shutil.which(argv[0]) is None:
        raise KitError(f"'{argv[0]}' was not found on PATH (the cluster topology needs it)", IP_FIX)
    done = subprocess.run(list(argv), capture_output=True, text=True, input=input)
    if check and done.returncode != 0:
        raise KitError(f"'{' '.join(argv)}' failed: {done.stderr.strip()[:200]}", IP_FIX)
    return done


def install_nftables() -> None:
    if shutil.which("nft"):
        return
    if shutil.which("apt-get") and psutil.Process().uids().effective == 0:
        _run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "nftables")
    if not shutil.which("nft"):
        raise KitError("nftables is not installed (network partitions need it)", IP_FIX)


@dataclass(frozen=True)
class Node:
    broker: str
    index: int  # 0-based
    address: str
    netns: str  # the namespace, and the name of its veth on the bridge

    def exec_prefix(self) -> list[str]:
        """Run a command inside the node's namespace (as if on that machine)."""
        return ["ip", "netns", "exec", self.netns]


class NetLab:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.prefix = f"qk{settings.port_offset}"
        self.bridge = f"{self.prefix}br"
        self.fault_table = f"{self.prefix}fault"

    def nodes(self, broker: str) -> list[Node]:
        return [Node(broker, i, self.settings.node_address(broker, i), f"{self.prefix}{LETTER[broker]}{i + 1}")
                for i in range(CLUSTER_SIZE)]

    # -- observe -----------------------------------------------------------------
    def namespaces(self) -> list[str]:
        out = _run("ip", "netns", "list", check=False).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix)]

    def links(self) -> list[str]:
        out = _run("ip", "-o", "link", "show", check=False).stdout
        names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
        return [n for n in names if n.startswith(self.prefix)]

    def tables(self) -> list[str]:
        if not shutil.which("nft"):
            return []
        out = _run("nft", "list", "tables", check=False).stdout
        return [line.strip() for line in out.splitlines() if line.split()[-1:] == [self.fault_table]]

    def pids_in(self, netns: str) -> list[int]:
        out = _run("ip", "netns", "pids", netns, check=False).stdout
        return [int(p) for p in out.split()]

    # -- build and tear down ------------------------------------------------------
    def ensure_bridge(self) -> None:
        with _BRIDGE_LOCK:  # both clusters may start side by side
            if self.bridge not in self.links():
                _run("ip", "link", "add", self.bridge, "type", "bridge")
                _run("ip", "addr", "add", f"{self.settings.cluster_subnet}.1/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")

    def ensure_node(self, node: Node) -> None:
        """The namespace, its veth on the bridge and its one address (idempotent)."""
        self.ensure_bridge()
        if node.netns not in self.namespaces():
            _run("ip", "netns", "add", node.netns)
        if node.netns not in self.links():
            _run("ip", "link", "add", node.netns, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
            _run("ip", "link", "set", node.netns, "master", self.bridge, "up")
            _run(*node.exec_prefix(), "ip", "addr", "add", f"{node.address}/24", "dev", "eth0")
        _run(*node.exec_prefix(), "ip", "link", "set", "lo", "up")
        _run(*node.exec_prefix(), "ip", "link", "set", "eth0", "up")

    def remove_node(self, node: Node) -> None:
        """Kill whatever still runs in the namespace (epmd, a stray JVM), then remove it and its veth."""
        if node.netns in self.namespaces():
            procs = [psutil.Process(p) for p in self.pids_in(node.netns) if psutil.pid_exists(p)]
            for proc in procs:
                try:
                    proc.send_signal(signal.SIGCONT)  # a paused node cannot die of SIGTERM
                    proc.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(procs, timeout=10)
            _run("ip", "netns", "delete", node.netns, check=False)
        if node.netns in self.links():
            _run("ip", "link", "delete", node.netns, check=False)

    def remove_bridge_if_unused(self) -> None:
        if [link for link in self.links() if link != self.bridge]:
            return  # the other broker's nodes still hang on it
        self.heal()
        if self.bridge in self.links():
            _run("ip", "link", "delete", self.bridge, check=False)

    # -- faults --------------------------------------------------------------------
    def cut(self, node: Node, from_clients: bool = False) -> None:
        """Drop every frame between ``node`` and its peers (or, from_clients, between it and the host).

        Bridge-family rules on interface names: the node's packets never reach the
        others (forward) or the clients in the root namespace (input/output).
        """
        install_nftables()
        peers = ", ".join(f'"{n.netns}"' for n in self.nodes(node.broker) if n != node)
        if from_clients:
            rules = [f'chain input {{ type filter hook input priority -200; iifname "{node.netns}" drop; }}',
                     f'chain output {{ type filter hook output priority -200; oifname "{node.netns}" drop; }}']
        else:
            rules = [f'chain forward {{ type filter hook forward priority -200; '
                     f'iifname "{node.netns}" oifname {{ {peers} }} drop; '
                     f'iifname {{ {peers} }} oifname "{node.netns}" drop; }}']
        script = f"table bridge {self.fault_table} {{\n" + "\n".join(rules) + "\n}\n"
        _run("nft", "-f", "-", input=script)

    def heal(self) -> None:
        """Remove every cut (idempotent)."""
        if self.tables():
            _run("nft", "delete", "table", "bridge", self.fault_table, check=False)

    def leftovers(self) -> dict[str, list[str]]:
        """What of the cluster network exists now (empty lists after ``queuekit down``)."""
        return {"namespaces": self.namespaces(), "links": self.links(), "nft tables": self.tables()}
