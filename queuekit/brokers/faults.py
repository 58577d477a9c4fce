"""Real faults on the cluster topology: find the leader from the broker's own metadata, then hurt it.

    kill               SIGKILL every process of the node; healing restarts it (same data dir). Redis: the
                       server only; the Sentinel beside it lives on (a crashed server, not a lost host)
    pause              SIGSTOP the node (a long GC pause, a frozen VM: the zombie leader); SIGCONT heals.
                       Redis: the server only, like kill
    (partitions cut the whole namespace: a Redis node's Sentinel is cut off with it, as on one host)
    partition          drop every frame between the node and its peers (nftables, netlab.py)
    partition-clients  drop every frame between the node and the clients; the peers still see it

``during(kind, broker, node)`` heals in ``finally`` (an exception, Ctrl-C);
``queuekit down`` heals whatever is left (it resumes paused nodes and deletes
the fault table before it stops anything).
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

import httpx

from queuekit.core.config import Settings
from queuekit.core.errors import KitError

from .netlab import NetLab

KINDS = ("kill", "pause", "partition", "partition-clients")


@dataclass
class FaultRecord:
    kind: str
    broker: str  # rabbitmq | kafka | redis
    node: int  # 0-based index of the node hurt
    address: str
    injected_at: float  # time.time()
    healed_at: float | None = None
    heal_seconds: float | None = None  # how long healing took (a killed node's restart)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _cluster(settings: Settings, broker: str):
    if not settings.clustered:
        raise KitError("faults need the cluster topology", "run with --topology cluster (QUEUEKIT_TOPOLOGY=cluster)")
    if broker == "rabbitmq":
        from .rabbitmq_cluster import RabbitCluster

        return RabbitCluster(settings)
    if broker == "kafka":
        from .kafka_cluster import KafkaCluster

        return KafkaCluster(settings)
    if broker == "redis":
        from .redis_cluster import RedisCluster

        return RedisCluster(settings)
    raise KitError(f"no cluster for broker {broker!r}", "use rabbitmq, kafka or redis")


# -- who leads -------------------------------------------------------------------------
def rabbit_queue_leader(settings: Settings, queue: str) -> int:
    """The node index leading ``queue``: ``leader`` of a quorum queue, ``node`` of a classic one."""
    cluster = _cluster(settings, "rabbitmq")
    errors = []
    for url in settings.mgmt_urls:  # whichever node answers: one may be the one we hurt
        try:
            r = httpx.get(f"{url}/api/queues/{quote(settings.vhost, safe='')}/{quote(queue, safe='')}",
                          auth=settings.mgmt_auth, timeout=3)
            r.raise_for_status()
            info = r.json()
            return cluster.node_index(info.get("leader") or info["node"])
        except (httpx.HTTPError, KeyError) as exc:
            errors.append(f"{url}: {exc}")
    raise KitError(f"no node could say which node leads queue {queue!r}: {'; '.join(errors)[:300]}")


def kafka_partition_leader(settings: Settings, topic: str, partition: int = 0) -> int:
    """The node index leading ``topic``/``partition`` in the cluster's metadata."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    if meta.error or partition not in meta.partitions:
        raise KitError(f"Kafka has no partition {topic}/{partition}: {meta.error}")
    leader = meta.partitions[partition].leader
    if leader < 0:
        raise KitError(f"{topic}/{partition} has no leader right now")
    return leader - 1  # node.id is index + 1


def redis_primary(settings: Settings) -> int:
    """The node index the Redis Sentinels' majority names as primary."""
    return _cluster(settings, "redis").primary()


def kafka_isr(settings: Settings, topic: str, partition: int = 0) -> list[int]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    return list(admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].isrs)


def _rabbit_views(settings: Settings) -> dict[int, int | None]:
    """node index -> how many nodes it sees running (None: its management API did not answer)."""
    views: dict[int, int | None] = {}
    for i, node in enumerate(_cluster(settings, "rabbitmq").nodes):
        try:
            views[i] = node.running_peers()
        except httpx.HTTPError:
            views[i] = None
    return views


def split_nodes(settings: Settings, broker: str) -> list[int]:
    """[] when the cluster is whole; else the nodes not seeing all the others (or not answering).
    Kafka: every node when a broker is missing from the metadata (it does not say who is apart).
    Redis: every node unless the Sentinels agree on a primary with both replicas online (redis_cluster.py)."""
    cluster = _cluster(settings, broker)
    if broker == "redis":
        return list(range(len(cluster.nodes))) if cluster.problems() else []
    if broker == "kafka":
        return [] if cluster.registered() == len(cluster.nodes) else list(range(len(cluster.nodes)))
    return [i for i, seen in _rabbit_views(settings).items() if seen is None or seen < len(cluster.nodes)]


def wait_whole(settings: Settings, broker: str, timeout: float = 60.0) -> list[int]:
    """Every node back and seen by the others, so a cell never starts on the last one's aftermath. A RabbitMQ
    cluster still split after ``timeout`` (seen after a 12 s SIGSTOP of a node: the resumed node saw its peers
    down, they saw it down, and pause_minority never joined them) is repaired: the answering node(s) seeing the
    fewest peers are killed and restarted on their data. Returns the nodes restarted (the caller notes it)."""
    from queuekit.core.waiting import WaitTimeout, wait_for

    try:
        wait_for(lambda: not split_nodes(settings, broker), timeout=timeout,
                 what=f"every {broker} node running and seen by every other")
        return []
    except WaitTimeout:
        views = _rabbit_views(settings) if broker == "rabbitmq" else {}
        answered = {i: seen for i, seen in views.items() if seen is not None}
        if not answered or len(set(answered.values())) < 2:
            raise  # nobody answers, or all agree: not a split the kit knows how to mend
    apart = [i for i, seen in answered.items() if seen == min(answered.values())]
    faults = Faults(settings)
    for index in apart:
        faults.heal(faults.inject("kill", broker, index))  # SIGKILL + restart on its data: it rejoins
    wait_for(lambda: not split_nodes(settings, broker), timeout=120,
             what=f"the RabbitMQ cluster whole again after restarting node(s) {[i + 1 for i in apart]}")
    return apart


def fresh_cluster(settings: Settings, broker: str, say=lambda _: None) -> None:
    """Stop the kit's cluster of ``broker`` and form it again from empty data: the last resort when a
    cell cannot even start on a cluster aged by the faults before it (the caller notes it in the row)."""
    cluster = _cluster(settings, broker)
    cluster.stop(say)
    cluster.start(say)


def whole_or_fresh(settings: Settings, broker: str, say=lambda _: None) -> str:
    """Before a case is judged: the cluster whole (``wait_whole``, which restarts a node left apart), else formed
    again from empty data once (``fresh_cluster``). Returns what it took, "" when the cluster was whole: the
    caller says it in its output, so a case that ran on a mended cluster is never mistaken for a clean one."""
    from queuekit.core.waiting import WaitTimeout

    try:
        restarted = wait_whole(settings, broker)
    except WaitTimeout as exc:
        say(f"the {broker} cluster did not heal ({str(exc)[:200]}); forming a fresh one")
        fresh_cluster(settings, broker, say)
        wait_whole(settings, broker, timeout=120)  # a fresh cluster that is not whole fails the case, saying why
        return f"the {broker} cluster was formed again from empty data (a heal did not complete)"
    return f"{broker} node(s) {[i + 1 for i in restarted]} restarted to rejoin a split cluster" if restarted else ""


# -- hurt and heal ---------------------------------------------------------------------
class Faults:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.net = NetLab(settings)

    def inject(self, kind: str, broker: str, node: int) -> FaultRecord:
        if kind not in KINDS:
            raise KitError(f"unknown fault {kind!r}", f"choose from {', '.join(KINDS)}")
        cluster = _cluster(self.settings, broker)
        target = cluster.nodes[node]
        record = FaultRecord(kind, broker, node, target.node.address, time.time())
        if kind == "kill":
            target.kill()  # SIGKILL: no shutdown hook, no flush, no goodbye to the peers
        elif kind == "pause":
            self._signal(target.pids(), signal.SIGSTOP)  # alive to the kernel, silent to everyone
        else:
            self.net.cut(target.node, from_clients=(kind == "partition-clients"))
        return record

    def heal(self, record: FaultRecord) -> None:
        cluster = _cluster(self.settings, record.broker)
        target = cluster.nodes[record.node]
        t0 = time.monotonic()
        if record.kind == "kill":
            cluster.restart_node(record.node)  # same data dir: it rejoins and catches up
        elif record.kind == "pause":
            self._signal(target.pids(), signal.SIGCONT)
        else:
            self.net.heal()
        record.healed_at = time.time()
        record.heal_seconds = round(time.monotonic() - t0, 2)

    @contextmanager
    def during(self, kind: str, broker: str, node: int) -> Iterator[FaultRecord]:
        """Inject on entry, heal on exit whatever happens inside."""
        record = self.inject(kind, broker, node)
        try:
            yield record
        finally:
            self.heal(record)

    @staticmethod
    def _signal(pids: list[int], sig: int) -> None:
        if not pids:
            raise KitError("the node has no running process to signal")
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
