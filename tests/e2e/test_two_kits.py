"""Two kits on ONE broker set: the second keeps to its own namespace and leaves everything else as it was.

The first kit's brokers (the session's, started by ``queuekit up``) get foreign objects of every kind from
plain clients first: a vhost of someone else's, queues (in it and in the default vhost) holding messages and
dead letters, topics named exactly like the kit's defaults (``qk.signup``, ``celery.signup``, a ``qk.*.dlq``
with dead letters), consumer groups with committed offsets, a share group that acknowledged a record. A
second kit (its own QUEUEKIT_HOME, the brokers given by URL, no prefix or vhost set) runs a RabbitMQ stack
twice (its own dead letters in between: the second reset deletes them, as they are its own), kafka,
celery_kafka and kafka_share, ``compare`` twice (its poison-to-dlq cells leave dead letters), then
``queuekit down --purge``. Everything on the brokers is snapshotted before and after: counts of every
vhost, queue, exchange, topic, group and share group, the planted objects byte for byte (payloads,
records, committed offsets), and they are equal.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from confluent_kafka import (
    AcknowledgeType,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    ShareConsumer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from kafka_share_app.wire import list_share_groups
from queuekit.core.waiting import wait_for

FOREIGN_VHOST = "queuekit"  # what older kits used as their external vhost: someone else's now
FOREIGN_QUEUES = {FOREIGN_VHOST: {"celery.signup": 3, "celery.signup.dlq": 2, "dramatiq.signup.XQ": 1},
                  "/": {"orders.foreign": 4}}
FOREIGN_TOPICS = {"qk.signup": 5, "qk.signup.dlq": 2, "celery.signup": 3, "qk.tracking.events": 4,
                  "qks.signup": 2}
FOREIGN_GROUPS = {"qk.signup": "qk.signup", "qk.tracking.analytics": "qk.tracking.events",
                  "celery.signup-consumer-group": "celery.signup"}  # group -> the topic it committed on
FOREIGN_SHARE_GROUP = ("qks.signup", "qks.signup")  # a share group (KIP-932) that acknowledged one record
RUNS = ("dramatiq", "dramatiq", "kafka", "celery_kafka", "kafka_share")  # dramatiq twice: the second reset meets its dead letter


def queuekit(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(Path(sys.executable).parent / "queuekit"), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert not check or done.returncode == 0, f"queuekit {' '.join(args)}: {done.stdout[-1500:]}{done.stderr[-2000:]}"
    return done


@pytest.fixture
def second_kit(kit, tmp_path) -> Iterator[dict[str, str]]:
    if kit.external("rabbitmq") or kit.external("kafka"):
        pytest.skip("needs a first kit that manages its own brokers")
    user, password = kit.mgmt_auth
    host, port = kit.amqp_address
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUEKIT_")}
    env.update({"QUEUEKIT_HOME": str(tmp_path / "second-home"), "QUEUEKIT_PORT_OFFSET": str(kit.port_offset + 100),
                "QUEUEKIT_BROKERS": "external",
                "QUEUEKIT_AMQP_URL": f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/",
                "QUEUEKIT_RABBIT_MGMT_URL": kit.mgmt_url, "QUEUEKIT_RABBIT_STREAM_PORT": str(kit.rabbit_stream_port),
                "QUEUEKIT_KAFKA_BOOTSTRAP": kit.kafka_bootstrap})
    yield env
    queuekit(env, "down", "--purge", check=False)  # a failed test leaves nothing of the second kit behind


@pytest.fixture
def foreign(kit):
    """Plant the foreign objects; remove them afterwards (they are the test's, not the session's)."""
    mgmt = httpx.Client(base_url=f"{kit.mgmt_url}/api", auth=kit.mgmt_auth, timeout=30)
    admin = AdminClient({"bootstrap.servers": kit.kafka_bootstrap})
    _cleanup(mgmt, admin, kit.kafka_bootstrap)
    mgmt.put(f"/vhosts/{FOREIGN_VHOST}").raise_for_status()
    mgmt.put(f"/permissions/{FOREIGN_VHOST}/{quote(kit.mgmt_auth[0], safe='')}",
             json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    for vhost, queues in FOREIGN_QUEUES.items():
        v = quote(vhost, safe="")
        for name, count in queues.items():
            mgmt.put(f"/queues/{v}/{quote(name, safe='')}", json={"durable": True}).raise_for_status()
            for i in range(count):
                mgmt.post(f"/exchanges/{v}/amq.default/publish",
                          json={"routing_key": name, "payload": f"{name} #{i}: someone else's",
                                "payload_encoding": "string", "properties": {"delivery_mode": 2}}).raise_for_status()
    def created() -> bool:  # a topic of the same name just deleted (a first kit's qk.signup) takes a moment to go
        missing = [t for t in FOREIGN_TOPICS if t not in admin.list_topics(timeout=10).topics]
        for future in (admin.create_topics([NewTopic(t, 1, 1) for t in missing]).values() if missing else ()):
            future.exception(30)
        return not missing

    wait_for(created, timeout=60, what=f"the foreign topics {', '.join(FOREIGN_TOPICS)} created")
    producer = Producer({"bootstrap.servers": kit.kafka_bootstrap})
    for topic, count in FOREIGN_TOPICS.items():
        for i in range(count):
            producer.produce(topic, f"{topic} #{i}: someone else's".encode(), key=f"user-{i}".encode(),
                             headers={"reason": b"foreign"} if topic.endswith(".dlq") else None)
    assert producer.flush(30) == 0
    for group, topic in FOREIGN_GROUPS.items():  # a group with offsets: it exists on the broker now
        consumer = Consumer({"bootstrap.servers": kit.kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
        consumer.close()
    _share_group_reads_one(kit.kafka_bootstrap, *FOREIGN_SHARE_GROUP)
    def planted() -> bool:  # the management API's counts trail a publish by seconds
        return all(mgmt.get(f"/queues/{quote(v, safe='')}/{quote(n, safe='')}").json().get("messages") == c
                   for v, queues in FOREIGN_QUEUES.items() for n, c in queues.items())

    wait_for(planted, timeout=30, what="the management API to count the planted messages")
    yield mgmt, admin
    _cleanup(mgmt, admin, kit.kafka_bootstrap)


def _share_group_reads_one(bootstrap: str, group: str, topic: str) -> None:
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode": "explicit", "max.poll.records": 1})
    try:
        consumer.subscribe([topic])

        def one() -> bool:
            for m in consumer.poll(1.0):
                if not m.error():
                    consumer.acknowledge(m, AcknowledgeType.ACCEPT)
                    consumer.commit_sync()
                    return True
            return False

        # a new share group starts at the latest offset: produce until it has read one
        wait_for(lambda: _produce(bootstrap, topic) and one(), timeout=60, what=f"share group {group} to read a record")
    finally:
        consumer.close()


def _produce(bootstrap: str, topic: str) -> bool:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"for the share group", key=b"share")
    return producer.flush(30) == 0


def _cleanup(mgmt: httpx.Client, admin: AdminClient, bootstrap: str) -> None:
    mgmt.delete(f"/vhosts/{FOREIGN_VHOST}")
    mgmt.delete(f"/queues/%2F/{quote('orders.foreign', safe='')}")
    share = [g for g in list_share_groups(bootstrap) if g == FOREIGN_SHARE_GROUP[0]]
    for future in (admin.delete_consumer_groups(share).values() if share else ()):
        future.exception(30)
    groups = [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid if g.group_id in FOREIGN_GROUPS]
    for future in (admin.delete_consumer_groups(groups).values() if groups else ()):
        future.exception(30)
    topics = [t for t in admin.list_topics(timeout=10).topics if t in FOREIGN_TOPICS]
    for future in (admin.delete_topics(topics).values() if topics else ()):
        future.exception(30)


def snapshot(kit, mgmt: httpx.Client, admin: AdminClient) -> dict:
    """Everything on both brokers (Kafka's internal topics aside): names and counts of all; the foreign
    objects' contents hashed (payloads in order, records with keys and headers, committed offsets)."""
    shot: dict = {"vhosts": sorted(v["name"] for v in mgmt.get("/vhosts").json())}
    for vhost in shot["vhosts"]:
        v = quote(vhost, safe="")
        shot[f"queues {vhost}"] = {q["name"]: q.get("messages", 0) for q in mgmt.get(f"/queues/{v}").json()}
        shot[f"exchanges {vhost}"] = sorted(e["name"] for e in mgmt.get(f"/exchanges/{v}").json())
    for vhost, queues in FOREIGN_QUEUES.items():
        for name in queues:
            got = mgmt.post(f"/queues/{quote(vhost, safe='')}/{quote(name, safe='')}/get",
                            json={"count": 100, "ackmode": "ack_requeue_true", "encoding": "auto"})
            shot[f"payloads {vhost}/{name}"] = _digest([m["payload"] for m in got.json()] if got.is_success else None)
    topics = {name: meta for name, meta in admin.list_topics(timeout=10).topics.items() if not name.startswith("__")}
    tps = [TopicPartition(t, p) for t, meta in topics.items() for p in meta.partitions]
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}) if tps else {}
    shot["topics"] = {f"{tp.topic}/{tp.partition}": f.result().offset for tp, f in ends.items()}
    for topic in FOREIGN_TOPICS:
        shot[f"records {topic}"] = _digest(_records(kit.kafka_bootstrap, topic)) if topic in topics else None
    groups = sorted(g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid)
    shot["groups"] = groups
    shot["share groups"] = sorted(list_share_groups(kit.kafka_bootstrap))
    for group in FOREIGN_GROUPS:
        if group in groups:
            found = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
            shot[f"offsets {group}"] = sorted((tp.topic, tp.partition, tp.offset) for tp in found.topic_partitions)
    return shot


def _records(bootstrap: str, topic: str) -> list:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "two-kits-reader", "enable.auto.commit": False})
    try:
        low, high = reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        reader.assign([TopicPartition(topic, 0, low)])
        out = []
        while len(out) < high - low:
            m = reader.poll(10)
            assert m is not None, f"{topic}: {len(out)} of {high - low} records read in 10 s"
            if m.error():
                raise KafkaException(m.error())
            out.append([m.offset(), (m.key() or b"").hex(), (m.value() or b"").hex(),
                        [(k, (v or b"").hex()) for k, v in m.headers() or ()]])
        return out
    finally:
        reader.close()


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def test_two_kits_on_one_broker_set_touch_nothing_of_each_other(kit, second_kit, foreign):
    mgmt, admin = foreign
    before = snapshot(kit, mgmt, admin)

    # Told to use the defaults' names, the second kit meets a foreign object and stops with one line
    collide = queuekit({**second_kit, "QUEUEKIT_KAFKA_PREFIX": "qk."}, "run", "kafka", "signup", "-n", "5",
                       check=False)
    assert collide.returncode != 0 and "'qk." in collide.stderr and "QUEUEKIT_KAFKA_PREFIX" in collide.stderr, \
        collide.stderr[-2000:]
    assert len([line for line in collide.stderr.splitlines() if line.startswith("Error")]) == 1, collide.stderr

    queuekit(second_kit, "up")
    home = Path(second_kit["QUEUEKIT_HOME"])
    install = (home / "install-id").read_text().strip()
    vhost, prefix = f"queuekit-{install}", f"qk-{install}."
    for stack in RUNS:
        t0 = time.monotonic()
        queuekit(second_kit, "run", stack, "signup", "-n", "20", "--malformed", "1", "--timeout", "120")
        print(f"run {stack}: {time.monotonic() - t0:.0f} s")
    for _ in range(2):  # compare again: its poison-to-dlq cells' dead letters are its own, not a stranger's
        t0 = time.monotonic()
        queuekit(second_kit, "compare", "--stack", "dramatiq", "--stack", "kafka", "--scenario", "poison-to-dlq",
                 "--rabbitmq", "3.10", "--out", str(home / "reports"))  # one version: the second kit builds no 4.x root
        print(f"compare: {time.monotonic() - t0:.0f} s")
    recorded = json.loads((home / "manifest.json").read_text())
    kinds = {(e["broker"], e["kind"]) for e in recorded}
    assert {("rabbitmq", "vhost"), ("rabbitmq", "queue"), ("kafka", "topic"), ("kafka", "group")} <= kinds, kinds
    ours = (prefix, f"qks-{install}.", f"dlq.qks-{install}.")  # kafka (and celery_kafka), kafka_share, its DLQs
    assert all(e["broker"] == "rabbitmq" or e["name"].startswith(ours) for e in recorded), recorded
    assert f"{prefix}signup" in admin.list_topics(timeout=10).topics
    assert f"{prefix}celery.signup" in admin.list_topics(timeout=10).topics  # celery_kafka: the namespace too
    assert mgmt.get(f"/queues/{vhost}/dramatiq.signup.XQ").json().get("messages") == 1  # its own dead letter

    purged = queuekit(second_kit, "down", "--purge")
    assert json.loads((home / "manifest.json").read_text()) == [], purged.stdout
    assert mgmt.get(f"/vhosts/{vhost}").status_code == 404
    assert not [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    assert not [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid
                if g.group_id.startswith(prefix)]
    assert not [g for g in list_share_groups(kit.kafka_bootstrap) if g.startswith(f"qks-{install}.")]

    after = snapshot(kit, mgmt, admin)
    print(f"foreign objects before/after: {_counts(before)} / {_counts(after)}")
    assert after == before


def _counts(shot: dict) -> dict[str, int]:
    """How many of each kind: the numbers the report quotes."""
    return {"vhosts": len(shot["vhosts"]),
            "queues": sum(len(v) for k, v in shot.items() if k.startswith("queues ")),
            "messages": sum(sum(v.values()) for k, v in shot.items() if k.startswith("queues ")),
            "exchanges": sum(len(v) for k, v in shot.items() if k.startswith("exchanges ")),
            "topic partitions": len(shot["topics"]), "records": sum(shot["topics"].values()),
            "groups": len(shot["groups"]), "share groups": len(shot["share groups"])}
