"""Fault primitives on the real cluster: the broker's own metadata shows each fault take effect and heal."""
from __future__ import annotations

import socket
import time
import uuid
import warnings

import httpx
import pika
import pytest

from queuekit.brokers.faults import (
    KINDS,
    Faults,
    kafka_isr,
    kafka_partition_leader,
    rabbit_queue_leader,
    whole_or_fresh,
)
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for

MOVES = {"kill": True, "pause": True, "partition": True, "partition-clients": False}


def _stable_leader(read, seconds: float = 4.0) -> int:
    """The leader once it has stayed the same for ``seconds``: a previous fault's after-effects
    (a metadata record catching up, a rejoining node) must not be blamed on this one."""
    seen: list[tuple[float, int | None]] = []
    errors: list[str] = []  # why no leader was seen, for the timeout message

    def settled() -> tuple[int] | None:  # a tuple: node index 0 is a leader, not "not yet"
        try:
            now = read()
        except KitError as exc:
            now = None
            errors.append(str(exc)[:200])
        t = time.monotonic()
        seen[:] = [(ts, v) for ts, v in seen if v == now] + [(t, now)]
        return (now,) if now is not None and t - seen[0][0] >= seconds else None

    return wait_for(settled, timeout=60, what="the same leader for a few seconds", interval=0.5,
                    describe=lambda: f"last answers {[v for _, v in seen[-3:]]}; last error: {errors[-1:] or 'none'}")[0]


def _refuses_clients(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
        return False
    except OSError:
        return True


@pytest.fixture(scope="module")
def kafka_topic(cluster_kit):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster_kit.kafka_bootstrap})
    # A fresh name, never "delete, then create": the delete used to be fired without waiting for its answer,
    # and on a cluster just formed (controller still being found: the request is queued and retried) it could
    # reach the controller AFTER the create and delete the new topic. That fits the clean-run failure (the
    # ISR seen as 3, then no partition for 60 s in every case, while the probes' fresh topics worked).
    name = f"qk.faults.probe.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 1, 3)])[name].result(30)
    wait_for(lambda: len(kafka_isr(cluster_kit, name)) == 3, timeout=30, what=f"{name} with 3 in-sync replicas")
    yield name
    admin.delete_topics([name])[name].result(30)  # waited for: nothing in flight after the module


@pytest.mark.parametrize("kind", KINDS)
def test_cluster_fault_kafka_leader(cluster_kit, kafka_topic, kind):
    s, faults = cluster_kit, Faults(cluster_kit)
    leader = _stable_leader(lambda: kafka_partition_leader(s, kafka_topic))
    with faults.during(kind, "kafka", leader) as fault:
        if MOVES[kind]:
            wait_for(lambda: kafka_partition_leader(s, kafka_topic) not in (leader,), timeout=45,
                     what=f"a new leader of {kafka_topic} after {kind} of node {leader + 1}")
        else:  # the peers still see it: it keeps leading, but no client gets through
            assert _refuses_clients(fault.address, s.ports.kafka)
            assert kafka_partition_leader(s, kafka_topic) == leader
    wait_for(lambda: len(kafka_isr(s, kafka_topic)) == 3, timeout=90,
             what=f"node {leader + 1} back in the ISR of {kafka_topic} after healing {kind}",
             describe=lambda: f"isr {kafka_isr(s, kafka_topic)}")


def heal_first(settings, broker: str) -> None:
    """The cluster whole before a case judges it; rebuilt once when a heal did not complete, and said so
    (a warning in the run's summary), so a case on a mended cluster is never taken for a clean run."""
    if done := whole_or_fresh(settings, broker, say=lambda msg: print(f"[heal] {msg}")):
        warnings.warn(f"before this case: {done}", stacklevel=2)


@pytest.fixture
def quorum_queue(cluster_kit):
    # Per case, after the heal check: a previous fault may have left the cluster split (a node resumed from
    # pause_minority seeing its peers down); repaired first, or the repair moves this queue's leader mid-test
    # (seen in CI: the leader changed during a clients-only cut). A cluster formed again drops every queue,
    # hence one queue per case. A fresh name each time: a member SIGKILLed after its queue was deleted and
    # declared again under the same name could not restart it in 3.10.8 ("could not be restarted {error,enoent}").
    heal_first(cluster_kit, "rabbitmq")
    name = f"qk.faults.probe.{uuid.uuid4().hex[:8]}"
    with _connect_any(cluster_kit) as conn:
        ch = conn.channel()
        ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
        ch.confirm_delivery()
        for _ in range(20):
            ch.basic_publish("", name, b"probe", pika.BasicProperties(delivery_mode=2))
    wait_for(lambda: _online_members(cluster_kit, name) == 3, timeout=30, what=f"{name} on 3 online members")
    yield name
    _delete(cluster_kit, name)


def _delete(s, queue: str) -> None:
    """Delete the probe queue once its leader serves again: right after a heal, the broker may answer 404
    "its master replica ... may be stopping or being demoted" (seen after a partition case)."""
    errors: list[str] = []

    def attempt() -> bool:
        try:
            with _connect_any(s) as conn:
                conn.channel().queue_delete(queue)
            return True
        except pika.exceptions.AMQPError as exc:
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            return False

    wait_for(attempt, timeout=60, what=f"{queue} deleted", describe=lambda: f"last errors: {errors[-2:]}")


def _connect_any(s) -> pika.BlockingConnection:
    """A connection to whichever node takes one first. A node back in the cluster (seen by its peers) may not
    listen for clients yet: seen in CI, node 1 refused AMQP just after the previous case's heal."""
    errors: list[str] = []

    def attempt() -> pika.BlockingConnection | None:
        for url in s.pika_urls:
            try:
                return pika.BlockingConnection(pika.URLParameters(url))
            except pika.exceptions.AMQPError as exc:
                errors.append(f"{url.split('@')[-1]}: {type(exc).__name__}")
        return None

    return wait_for(attempt, timeout=60, what="a RabbitMQ node taking a client connection",
                    describe=lambda: f"last refusals: {errors[-3:]}")


def _leader_or_none(s, queue: str) -> int | None:
    try:  # while a node is paused, the others' management API waits on it until net tick
        return rabbit_queue_leader(s, queue)
    except KitError:
        return None


def _online_members(s, queue: str) -> int:
    for url in s.mgmt_urls:
        try:
            return len(httpx.get(f"{url}/api/queues/%2F/{queue}", auth=s.mgmt_auth, timeout=3).json()["online"])
        except (httpx.HTTPError, KeyError):
            continue
    return 0


@pytest.mark.parametrize("kind", KINDS)
def test_cluster_fault_rabbitmq_quorum_leader(cluster_kit, quorum_queue, kind):
    s, faults = cluster_kit, Faults(cluster_kit)
    leader = _stable_leader(lambda: rabbit_queue_leader(s, quorum_queue))
    with faults.during(kind, "rabbitmq", leader) as fault:
        if MOVES[kind]:
            wait_for(lambda: _leader_or_none(s, quorum_queue) not in (None, leader), timeout=45,
                     what=f"a new leader of {quorum_queue} after {kind} of node {leader + 1}")
        else:
            assert _refuses_clients(fault.address, s.ports.amqp)
            assert rabbit_queue_leader(s, quorum_queue) == leader
    # A resumed (SIGCONT) node rejoins once Erlang distribution and Ra catch up: over 90 s once in CI with the
    # cluster lane beside the three broker lanes (2 cores); the wait is a deadline, not a pause
    wait_for(lambda: _online_members(s, quorum_queue) == 3, timeout=180,
             what=f"all 3 members of {quorum_queue} online after healing {kind}")
