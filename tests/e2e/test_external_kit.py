"""A second kit pointed at the first kit's brokers as "external": it keeps to its own namespace.

The second kit (own home, another port offset) uses the session's RabbitMQ and Kafka through
QUEUEKIT_AMQP_URL / QUEUEKIT_KAFKA_BOOTSTRAP with its own vhost and topic prefix. Foreign objects
are planted where a prefix-matching reset would hit them: a queue in its vhost named like its own,
a topic and a consumer group with its prefix. After ``queuekit run`` on every stack (the first stack twice:
its own dead letters do not stop the second run) they are untouched, and the first kit's brokers were
neither started nor stopped by the second. ``test_two_kits`` does the same with the install's default
namespace and counts every object before and after.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_share_app.wire import list_share_groups
from queuekit import brokers
from queuekit.stacks.registry import STACKS

VHOST, PREFIX, SHARE_PREFIX = "queuekit-second", "qk2.", "qks2."
FOREIGN_QUEUE = "celery.signup.orders"  # shares the Celery stack's prefix, in the second kit's own vhost
FOREIGN_TOPIC, FOREIGN_GROUP = f"{PREFIX}signup.orders", f"{PREFIX}orders-service"


@pytest.fixture
def second_kit_env(kit, tmp_path) -> dict[str, str]:
    if kit.external("rabbitmq") or kit.external("kafka"):
        pytest.skip("needs a first kit that manages its own brokers")
    user, password = kit.mgmt_auth
    host, port = kit.amqp_address
    return {**os.environ,
            "QUEUEKIT_HOME": str(tmp_path / "second-home"), "QUEUEKIT_PORT_OFFSET": str(kit.port_offset + 100),
            "QUEUEKIT_BROKERS": "external", "QUEUEKIT_RABBIT_VHOST": VHOST,
            "QUEUEKIT_AMQP_URL": f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/",
            "QUEUEKIT_RABBIT_MGMT_URL": kit.mgmt_url, "QUEUEKIT_RABBIT_STREAM_PORT": str(kit.rabbit_stream_port),
            "QUEUEKIT_KAFKA_BOOTSTRAP": kit.kafka_bootstrap,
            "QUEUEKIT_KAFKA_PREFIX": PREFIX, "QUEUEKIT_KAFKA_SHARE_PREFIX": SHARE_PREFIX,
            # the session's Redis by URL: the second kit keeps to its install's prefix (qk:<install id>:), and RQ,
            # whose keys carry no prefix, to a database the first kit does not use (its own RQ is in database 1)
            "QUEUEKIT_REDIS_URL": kit.redis_url, "QUEUEKIT_RQ_DB": "2"}


@pytest.fixture(autouse=True)
def cleanup(kit, second_kit_env):
    """Nothing of this test stays on the session's brokers: what the second kit recorded (its purge), then the
    foreign objects and anything left with its prefixes (share groups included)."""
    yield
    subprocess.run([str(Path(sys.executable).parent / "queuekit"), "down", "--purge"], env=second_kit_env,
                   capture_output=True, timeout=300)
    httpx.delete(f"{kit.mgmt_url}/api/vhosts/{VHOST}", auth=kit.mgmt_auth, timeout=30)
    admin = AdminClient({"bootstrap.servers": kit.kafka_bootstrap})
    ours = (PREFIX, SHARE_PREFIX, f"dlq.{SHARE_PREFIX}")
    groups = [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid if g.group_id.startswith(ours)]
    groups += [g for g in list_share_groups(kit.kafka_bootstrap) if g.startswith(ours)]
    for future in (admin.delete_consumer_groups(groups).values() if groups else ()):
        future.exception(30)
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(ours)]
    for future in (admin.delete_topics(topics).values() if topics else ()):
        future.exception(30)


def queuekit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(Path(sys.executable).parent / "queuekit"), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"queuekit {' '.join(args)}: {done.stderr[-2000:]}"
    return done


def test_a_second_kit_leaves_foreign_objects_and_the_first_kits_brokers_alone(kit, second_kit_env):
    before = {s.name: s.pid for s in brokers.statuses(kit)}
    mgmt = httpx.Client(base_url=f"{kit.mgmt_url}/api", auth=kit.mgmt_auth, timeout=10)
    admin = AdminClient({"bootstrap.servers": kit.kafka_bootstrap})

    queuekit(second_kit_env, "up")  # checks the brokers, creates its vhost, starts nothing
    assert mgmt.get(f"/vhosts/{VHOST}").status_code == 200
    _plant_queue(mgmt)
    _plant_topic_and_group(kit.kafka_bootstrap)

    run = ("signup", "-n", "20", "--malformed", "1", "--timeout", "120")
    first, *others = STACKS
    queuekit(second_kit_env, "run", first, *run)
    # Its dead letter now sits on the shared broker, in its own recorded namespace: the next reset deletes it
    # (saying so) instead of refusing it as if it were someone else's
    for name in (first, *others):
        queuekit(second_kit_env, "run", name, *run)

    q = mgmt.get(f"/queues/{VHOST}/{FOREIGN_QUEUE}").json()
    assert q.get("messages") == 1, q  # neither deleted nor purged
    assert FOREIGN_TOPIC in admin.list_topics(timeout=10).topics
    groups = {g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid}
    assert FOREIGN_GROUP in groups
    assert {s.name: s.pid for s in brokers.statuses(kit)} == before  # not restarted, not stopped
    home = second_kit_env["QUEUEKIT_HOME"]
    assert not list(Path(home).glob("run*/*/*.pid")), "the second kit started a process"
    flower_port = kit.ports.flower + 100
    assert subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{flower_port}"],
                          capture_output=True).returncode != 0, "a local Flower was started"
    # what the second kit made lives in its own namespace: nothing of it in the first kit's vhost
    first = {q["name"] for q in mgmt.get(f"/queues/{quote(kit.vhost, safe='')}").json()}
    second = {q["name"] for q in mgmt.get(f"/queues/{VHOST}").json()}
    assert f"{PREFIX}celery.signup.dlq" in second and "dramatiq.signup.XQ" in second  # celery: the Kafka prefix too
    assert any(t.startswith(f"{PREFIX}signup") for t in admin.list_topics(timeout=10).topics)
    assert first.isdisjoint({FOREIGN_QUEUE})


def _plant_queue(mgmt: httpx.Client) -> None:
    mgmt.put(f"/queues/{VHOST}/{FOREIGN_QUEUE}", json={"durable": True}).raise_for_status()
    mgmt.post(f"/exchanges/{VHOST}/amq.default/publish",
              json={"routing_key": FOREIGN_QUEUE, "payload": "an order", "payload_encoding": "string",
                    "properties": {"delivery_mode": 2}}).raise_for_status()


def _plant_topic_and_group(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(FOREIGN_TOPIC, 1, 1)])[FOREIGN_TOPIC].result(30)  # the broker never auto-creates
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(FOREIGN_TOPIC, b"an order")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": FOREIGN_GROUP, "enable.auto.commit": False})
    consumer.assign([TopicPartition(FOREIGN_TOPIC, 0, 0)])
    consumer.commit(offsets=[TopicPartition(FOREIGN_TOPIC, 0, 1)], asynchronous=False)  # the group exists now
    consumer.close()
