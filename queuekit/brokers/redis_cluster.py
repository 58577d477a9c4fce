"""A Redis primary, two replicas and three Sentinels, each pair in a network namespace of its own (netlab.py).

Node ``i`` (namespace ``qk<off>d<i>``, address ``.31``-``.33``) runs one
``redis-server`` and one Sentinel (``redis-server --sentinel``), as a Redis
host usually does. Node 1 starts as the primary, nodes 2 and 3 as its
replicas. The Sentinels monitor it as ``queuekit`` with a quorum of 2: two
must agree the primary is down before a failover, and a majority (2 of 3)
must elect the Sentinel that runs it, so a Sentinel cut off with its node
can never promote anything alone. Clients never name the primary: they ask
the Sentinels (core/redis_client.py).

Replication is asynchronous (Redis's only mode): the primary acknowledges a
write before any replica has it, so a failover may lose what the old primary
acknowledged last; ``WAIT 1`` (the probe's option) blocks until one replica
has it. Every process authenticates: the replicas to the primary and the
Sentinels to the servers and to each other as the kit's ACL user. ``down``
removes the data: every ``up`` forms a fresh cluster.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from queuekit.core.config import CLUSTER_SIZE, Settings, private_dir, write_private
from queuekit.core.errors import KitError
from queuekit.core.redis_client import SERVICE, SOCKET_TIMEOUT
from queuekit.core.waiting import wait_for

from .base import Say, Status
from .netlab import NetLab, Node
from .process import ManagedProcess, elapsed
from .redis import READY_TIMEOUT, REDIS_SERVER, acl_lines, install_redis, observed_config, server_config

QUORUM = 2  # Sentinels that must see the primary down before a failover starts
# A primary silent for 3 s is "subjectively down" (default 30 s): a pause or cut shows within a CI-sized hold.
DOWN_AFTER_MS = 3000
FAILOVER_TIMEOUT_MS = 10000  # a failover not done in 10 s is retried (by another Sentinel, default 3 min)
HEALTH_TIMEOUT = 60.0


class RedisNode:
    def __init__(self, settings: Settings, node: Node, primary: str):
        self.settings, self.node, self.primary = settings, node, primary
        self.dir = settings.run_dir / "cluster" / f"redis-{node.index + 1}"
        self.proc = ManagedProcess("redis", self.dir)
        self.sentinel_proc = ManagedProcess("sentinel", self.dir)
        self.url_host = node.address

    def _configs(self) -> None:
        s, port = self.settings, self.settings.ports.redis
        private_dir(self.dir)
        data, sentinel_dir = private_dir(self.dir / "data"), private_dir(self.dir / "sentinel")
        auth = (f"masteruser {s.redis_user}", f"masterauth {s.redis_password}")  # any node may become a replica
        role = () if self.node.index == 0 else (f"replicaof {self.primary} {port}",)
        write_private(self.dir / "redis.conf", server_config(s, data, self.node.address, auth + role))
        write_private(self.dir / "sentinel.conf", "\n".join([  # Sentinel rewrites it with what it learns: 0600
            f"bind {self.node.address}",
            f"port {s.ports.redis_sentinel}",
            "protected-mode yes",
            "daemonize no",
            'logfile ""',
            f"dir {sentinel_dir}",
            *acl_lines(s, "~* &* +@all"),  # clients and the other Sentinels authenticate as the kit's user
            # (a Sentinel has no FLUSHALL to deny)
            f"sentinel sentinel-user {s.redis_user}",
            f"sentinel sentinel-pass {s.redis_password}",
            f"sentinel monitor {SERVICE} {self.primary} {port} {QUORUM}",
            f"sentinel auth-user {SERVICE} {s.redis_user}",
            f"sentinel auth-pass {SERVICE} {s.redis_password}",
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {SERVICE} 1",  # replicas re-sync to a new primary one at a time
            "",
        ]))

    def client(self, sentinel: bool = False):
        import redis

        port = self.settings.ports.redis_sentinel if sentinel else self.settings.ports.redis
        return redis.Redis(self.node.address, port, username=self.settings.redis_user,
                           password=self.settings.redis_password, socket_timeout=SOCKET_TIMEOUT,
                           socket_connect_timeout=SOCKET_TIMEOUT, decode_responses=True)

    def answers(self, sentinel: bool = False) -> bool:
        try:
            with self.client(sentinel) as c:
                return bool(c.ping())
        except Exception:  # noqa: BLE001 - any client error means "not answering"
            return False

    def spawn(self) -> None:
        binary = shutil.which(REDIS_SERVER) or REDIS_SERVER
        self.proc.spawn([*self.node.exec_prefix(), binary, str(self.dir / "redis.conf")], umask=0o077)

    def spawn_sentinel(self) -> None:
        binary = shutil.which(REDIS_SERVER) or REDIS_SERVER
        self.sentinel_proc.spawn([*self.node.exec_prefix(), binary, str(self.dir / "sentinel.conf"), "--sentinel"],
                                 umask=0o077)

    def wait_ready(self) -> None:
        self.proc.wait_ready(self.answers, timeout=READY_TIMEOUT,
                             what=f"Redis node {self.node.index + 1} to answer an authenticated PING on "
                                  f"{self.node.address}:{self.settings.ports.redis}")

    def pids(self) -> list[int]:
        """The Redis server's process only: its Sentinel is another process, which a crash of the server spares."""
        return self.proc.tree_pids()

    def kill(self) -> None:
        self.proc.kill(f"Redis node {self.node.index + 1}")


class RedisCluster:
    """The ``redis`` component of the cluster topology."""

    name = "redis"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.net = NetLab(settings)
        netnodes = self.net.nodes("redis")
        self.nodes = [RedisNode(settings, n, netnodes[0].address) for n in netnodes]

    # -- observe ------------------------------------------------------------------------
    def node_index(self, address: str) -> int:
        for n in self.nodes:
            if n.node.address == address:
                return n.node.index
        raise KitError(f"{address} is not a node of the Redis cluster")

    def primaries(self) -> dict[int, str | None]:
        """Sentinel index -> the primary's address it names (None: that Sentinel did not answer)."""
        seen: dict[int, str | None] = {}
        for n in self.nodes:
            try:
                with n.client(sentinel=True) as c:
                    found = c.sentinel_get_master_addr_by_name(SERVICE)
                seen[n.node.index] = found[0] if found else None
            except Exception:  # noqa: BLE001
                seen[n.node.index] = None
        return seen

    def primary(self) -> int:
        """The node the Sentinels' majority names as primary."""
        votes = [a for a in self.primaries().values() if a]
        top = max(set(votes), key=votes.count) if votes else None
        if top is None or votes.count(top) < QUORUM:
            raise KitError(f"the Redis Sentinels name no primary by majority: {self.primaries()}")
        return self.node_index(top)

    def problems(self) -> list[str]:
        """[] when whole: every Sentinel names the same primary and sees the other two, and the primary
        has both replicas connected and online."""
        seen = self.primaries()
        named = set(seen.values())
        if None in named or len(named) != 1:
            return [f"Sentinels name the primary as {seen}"]
        problems = []
        for n in self.nodes:
            try:
                with n.client(sentinel=True) as c:
                    state = c.sentinel_master(SERVICE)
                if int(state.get("num-other-sentinels", 0)) != CLUSTER_SIZE - 1:
                    problems.append(f"Sentinel {n.node.index + 1} knows {state.get('num-other-sentinels')} others")
            except Exception as exc:  # noqa: BLE001
                problems.append(f"Sentinel {n.node.index + 1}: {exc}")
        primary = self.nodes[self.node_index(named.pop() or "")]
        try:
            with primary.client() as c:
                info = c.info("replication")
        except Exception as exc:  # noqa: BLE001
            return [*problems, f"primary {primary.node.address}: {exc}"]
        online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                  and v.get("state") == "online"]
        if info.get("role") != "master" or len(online) != CLUSTER_SIZE - 1:
            problems.append(f"primary {primary.node.address}: role {info.get('role')}, {len(online)} replicas online")
        return problems

    def status(self) -> Status:
        pids = [n.proc.pid() for n in self.nodes]
        sentinels = ", ".join(f"{h}:{p}" for h, p in self.settings.redis_sentinels)
        url = f"redis+sentinel://{sentinels}/{SERVICE}"
        managed = "kit" if any(pids) else "stopped"
        if not any(n.answers() for n in self.nodes):
            return Status(self.name, url, managed, False, pids[0], detail="no node answers")
        problems = self.problems()
        try:
            with self.nodes[self.primary()].client() as c:
                version, config = c.info("server")["redis_version"], observed_config(c)
            primary = f"primary node {self.primary() + 1}"
        except Exception:  # noqa: BLE001
            version, config, primary = None, None, "no primary"
        detail = f"{primary}; " + ("; ".join(problems) if problems else "2 replicas online, 3 Sentinels agree")
        config = config and {**config, "replication": "asynchronous, 2 replicas", "sentinel quorum": str(QUORUM),
                             "down-after-milliseconds": str(DOWN_AFTER_MS)}
        return Status(self.name, url, managed, not problems, pids[0], version, f"{detail}; pids {pids}", config)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, say: Say) -> bool:
        if all(n.proc.pid() and n.sentinel_proc.pid() for n in self.nodes):
            wait_for(lambda: not self.problems(), timeout=HEALTH_TIMEOUT, what="the Redis cluster (already started)",
                     describe=lambda: "; ".join(self.problems()))
            return False
        install_redis(say)
        if any(n.proc.pid() or n.sentinel_proc.pid() for n in self.nodes):
            self.stop(say)  # half a cluster (a run that died mid-way): a fresh one, like every other up
        t0 = time.monotonic()
        for n in self.nodes:
            shutil.rmtree(n.dir, ignore_errors=True)  # fresh data and a fresh Sentinel state
            self.net.ensure_node(n.node)
            n._configs()
        say(f"starting Redis (primary + 2 replicas + 3 Sentinels) on {', '.join(n.node.address for n in self.nodes)}…")
        for n in self.nodes:
            n.spawn()
        for n in self.nodes:
            n.wait_ready()
        for n in self.nodes:
            n.spawn_sentinel()

        def whole() -> bool:
            for n in self.nodes:
                for proc in (n.proc, n.sentinel_proc):
                    if proc.pid() is None:
                        raise KitError(f"{proc.name} of Redis node {n.node.index + 1} exited during start-up: "
                                       f"{proc.log_tail(2)}", f"see {proc.log_file}")
            return not self.problems()

        wait_for(whole, timeout=HEALTH_TIMEOUT,
                 what="2 Redis replicas online and 3 Sentinels agreeing on the primary",
                 describe=lambda: "; ".join(self.problems()))
        say(f"Redis cluster ready in {elapsed(t0)}")
        return True

    def stop(self, say: Say) -> bool:
        self.net.heal()  # a cut left by a failed run: gone before anything stops
        for n in self.nodes:
            for pid in n.pids() + n.sentinel_proc.tree_pids():
                try:
                    os.kill(pid, signal.SIGCONT)  # a paused server cannot exit
                except OSError:
                    pass
        procs = [p for n in self.nodes for p in (n.sentinel_proc, n.proc)]
        with ThreadPoolExecutor(len(procs)) as pool:
            stopped = any(list(pool.map(lambda p: p.stop(timeout=20), procs)))
        for n in self.nodes:
            self.net.remove_node(n.node)
            shutil.rmtree(n.dir / "data", ignore_errors=True)  # every `up` forms a fresh cluster
        self.net.remove_bridge_if_unused()
        if stopped:
            say("Redis cluster stopped")
        return stopped

    def restart_node(self, index: int) -> None:
        """Start a killed server again on its data and config (Sentinel may have rewritten its role); the
        Sentinels turn a returning old primary into a replica of the new one."""
        n = self.nodes[index]
        if n.proc.pid() is None:
            n.spawn()
        n.wait_ready()
