"""Raw-client baselines: how fast each broker serves a bare consume + ack loop on this machine.

Same message size, same persistence and acknowledgement as the stacks (durable
queue, persistent messages, manual ack after "processing"; Kafka acks=all,
offsets stored after processing; Redis: a stream and a consumer group, XACK
after "processing", on the kit's AOF-everysec server), same number of consumer
processes, and the rate taken the same way (``measure.steady``: while every
consumer process was working, between the trimmed quantiles of completions). A
stack's rate divided by its broker's baseline is the framework's cost.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bare import RDKAFKA_LOG, in_parallel
from bare.kafka_worker import StartGate
from queuekit.bench.twins import group_assigned
from queuekit.core.config import Settings
from queuekit.core.waiting import wait_for

if TYPE_CHECKING:
    from confluent_kafka import Consumer, TopicPartition


@dataclass(frozen=True)
class Window:
    """A raw run's numbers, taken like a stack's (``measure.steady``): completions per second inside the
    steady window (every consumer process working, trimmed quantiles), and how many records were read."""

    rate: float
    count: int
    window_share: float


Done = list[tuple[object, float]]  # (the record's identity, when its ack/offset store returned), per consumer


def _rabbit_consumer(url: str, queue: str, prefetch: int, stop_after: int, out: mp.Queue) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)  # the same in-flight bound the stacks use
    done: Done = []
    for method, _props, _body in ch.consume(queue, inactivity_timeout=IDLE_S):  # no join: idle from the start
        if method is None:
            break
        ch.basic_ack(method.delivery_tag)  # manual ack after "processing" (nothing): at-least-once
        done.append(((os.getpid(), len(done)), time.time()))
        if len(done) >= stop_after:
            break
    out.put((os.getpid(), done))
    conn.close()


def rabbitmq_baseline(settings: Settings, payloads: list[bytes], consumers: int, prefetch: int) -> tuple[float, Window]:
    """Publish with confirms from ``bare.PUBLISHERS`` threads (timed), then drain with ``consumers`` processes;
    returns (publish secs, window)."""
    import pika

    queue = f"bench.raw.{uuid.uuid4().hex[:6]}"
    conn = pika.BlockingConnection(pika.URLParameters(settings.pika_url))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)

    def send(part: list[bytes]) -> None:  # each thread its own connection, waiting for each confirm
        own = pika.BlockingConnection(pika.URLParameters(settings.pika_url))
        channel = own.channel()
        channel.confirm_delivery()
        for body in part:
            channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2,
                                                                        content_type="application/json"))
        own.close()

    t0 = time.monotonic()
    in_parallel(send, payloads)  # as many confirmed publishers as the stacks' backlogs get (bare.PUBLISHERS)
    publish_s = time.monotonic() - t0
    window = _consume_in_processes(_rabbit_consumer, (settings.pika_url, queue, prefetch, len(payloads)), consumers)
    ch.queue_delete(queue)
    conn.close()
    return publish_s, window


# Group settings of the raw members, as the bare twin's (bare/kafka_worker.py) and the stack's (kafka_app/clients.py):
# cooperative rebalancing, members hearing of a rebalance within 0.5 s
GROUP = {"partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 2000,
         "heartbeat.interval.ms": 500}


def _kafka_consumer(bootstrap: str, topic: str, group: str, total: int, gate: str, out: mp.Queue) -> None:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.offset.store": False, "log_level": 0, **GROUP})
    member = Member(c, StartGate(gate))
    c.subscribe([topic], on_assign=member.assigned, on_revoke=member.revoked)
    done: Done = []
    got = False
    while member.polling(got):
        msg = c.poll(0.5 if member.gate.open else 0.05)  # at the gate: see it open within 50 ms
        got = msg is not None and not msg.error()
        if msg is None or msg.error():
            continue
        c.store_offsets(msg)  # offset stored after "processing": at-least-once, as the stack does
        done.append(((msg.partition(), msg.offset()), time.time()))
    out.put((os.getpid(), done))
    c.close()


def _kafka_batch_consumer(bootstrap: str, topic: str, group: str, total: int, gate: str, out: mp.Queue) -> None:
    """Written for throughput: ``consume(num_messages=…)``, the work per record, ONE commit per batch."""
    import json

    from confluent_kafka import Consumer

    from workloads.messages import SignupRequested
    from workloads.signup import welcome_email

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False,  # committed by us, once per batch, after the batch's work
                  "fetch.min.bytes": 65536, "fetch.wait.max.ms": 50, "log_level": 0, **GROUP})
    member = Member(c, StartGate(gate))
    c.subscribe([topic], on_assign=member.assigned, on_revoke=member.revoked)
    done: Done = []
    handled: list[object] = []  # (partition, offset) of each record of the last batch
    while member.polling(got=bool(handled)):
        handled = []
        for msg in c.consume(num_messages=BATCH, timeout=0.5 if member.gate.open else 0.05):
            if msg.error():
                continue
            doc = json.loads(msg.value() or b"{}")  # the same work as the bare programs: parse, build, compute
            welcome_email(SignupRequested(**doc["body"]))
            handled.append((msg.partition(), msg.offset()))
        if not handled:
            continue
        # After the whole batch's work: a crash before this re-delivers the batch (at-least-once).
        c.commit(asynchronous=False)
        now = time.time()  # a batch's records complete together, at its commit
        done += [(where, now) for where in handled]
    out.put((os.getpid(), done))
    c.close()


BATCH = 1000  # records per consume() call and per commit
IDLE_S = 2.0  # a consumer that saw nothing this long (once it has partitions) has drained them
JOIN_S = 60.0  # how long a member may wait for the group's join (seconds on a loaded machine)


class Member:
    """When a raw group member is done. The members start as the bare twin's do: each holds what it is
    assigned paused (``bare.kafka_worker.StartGate``) until the driver sees the whole group assigned and opens
    the gate. Without it the first member drained most of a 200,000-record backlog alone while the others
    joined, and the raw client read below the kit's stack (143,554 against 157,376 msgs/s, 2026-12-05).
    The join and the gate are not idleness: the idle limit counts from the gate's opening. A member assigned
    nothing, or whose partitions hold nothing past its position, is done at once."""

    def __init__(self, consumer: Consumer, gate: StartGate):
        self.consumer, self.gate = consumer, gate
        self.partitions: list[TopicPartition] | None = None  # None until assigned (and again between revoke and assign)
        self.join_by = time.monotonic() + JOIN_S
        self.idle_since = 0.0

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.gate.assigned(consumer, partitions)  # incremental_assign, paused while the gate is shut
        self.partitions, self.idle_since = (self.partitions or []) + partitions, time.monotonic()

    def revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.partitions, self.join_by = None, time.monotonic() + JOIN_S  # a rebalance: wait for the next assignment

    def polling(self, got: bool) -> bool:
        now = time.monotonic()
        if not self.gate.open:
            self.gate.check(self.consumer)
            self.idle_since = now  # waiting at the gate is not idleness
            return now < self.join_by + JOIN_S
        if got:
            self.idle_since = now
        if self.partitions is None:
            return now < self.join_by
        if not got and (not self.partitions or self.nothing_left()):
            return False
        return now - self.idle_since < IDLE_S

    def nothing_left(self) -> bool:
        """Every assigned partition read up to its high watermark (from our position, else the committed one)."""
        for tp in self.partitions or []:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=5)
            [at] = self.consumer.position([tp])
            if at.offset < 0:  # nothing fetched yet: where the group left it, else the start (offset reset earliest)
                [at] = self.consumer.committed([tp], timeout=5)
            if max(at.offset, low) < high:
                return False
        return True


def kafka_batch_baseline(settings: Settings, payloads: list[bytes], consumers: int) -> tuple[float, Window]:
    """As ``kafka_baseline``, consumed by ``_kafka_batch_consumer`` processes."""
    return kafka_baseline(settings, payloads, consumers, _kafka_batch_consumer)


def kafka_baseline(settings: Settings, payloads: list[bytes], consumers: int,
                   consumer=None) -> tuple[float, Window]:
    """Produce with acks=all (timed), then consume with ``consumers`` group members, one partition each."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, consumers, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "logger": RDKAFKA_LOG,
                         "linger.ms": 5})
    t0 = time.monotonic()
    for i, body in enumerate(payloads):
        while True:
            try:
                producer.produce(topic, body, key=str(i % 64))
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: let deliveries drain
        producer.poll(0)
    producer.flush(60)
    publish_s = time.monotonic() - t0
    group = f"{topic}.g"
    with tempfile.TemporaryDirectory(prefix="queuekit-raw-") as tmp:
        gate = Path(tmp) / "go"  # opened once every member is in the group with its partition (Member)
        window = _consume_in_processes(consumer or _kafka_consumer,
                                       (settings.kafka_bootstrap, topic, group, len(payloads), str(gate)), consumers,
                                       gate=(gate, group_assigned(settings, group, topic, consumers),
                                             f"raw group {group} of {consumers} members owning every partition"))
    admin.delete_topics([topic])
    return publish_s, window


def _redis_consumer(settings: Settings, stream: str, prefetch: int, stop_after: int, out: mp.Queue) -> None:
    from queuekit.core.redis_client import connect

    client = connect(settings)
    done: Done = []
    name = f"c{mp.current_process().pid}"
    idle = 0
    while len(done) < stop_after and idle < IDLE_S:  # IDLE_S without an entry: drained (as pika's inactivity_timeout)
        # COUNT = the stacks' prefetch; BLOCK 1 s (under the client's 2 s socket timeout); no join: idle from the start
        reply = client.xreadgroup("g", name, {stream: ">"}, count=prefetch, block=1000)
        idle = 0 if reply else idle + 1
        if not reply:
            continue
        for entry_id, _fields in reply[0][1]:
            client.xack(stream, "g", entry_id)  # XACK after "processing" (nothing), one per entry: at-least-once
            done.append((entry_id, time.time()))
    out.put((os.getpid(), done))
    client.close()


def redis_baseline(settings: Settings, payloads: list[bytes], consumers: int, prefetch: int) -> tuple[float, Window]:
    """A Redis Streams consumer group, raw redis-py: XADD from ``bare.PUBLISHERS`` threads, pipelined by 1,000 as the
    redis_streams stack publishes (each reply is the confirmation; timed), then ``consumers`` processes of
    XREADGROUP COUNT prefetch + XACK per entry drain it. The stream is under the install's Redis prefix, deleted by name."""
    from queuekit.core.redis_client import connect
    from queuekit.core.redis_keys import KeySpace

    client = connect(settings)
    space = KeySpace(client, settings.redis_prefix)
    stream = space.key("bench", "raw", uuid.uuid4().hex[:6])
    space.record(stream)
    client.xgroup_create(stream, "g", id="0", mkstream=True)

    def send(part: list[bytes]) -> None:  # each thread its own client
        own = connect(settings)
        for i in range(0, len(part), 1000):
            pipe = own.pipeline(transaction=False)
            for body in part[i:i + 1000]:
                pipe.xadd(stream, {b"envelope": body})
            pipe.execute()
        own.close()

    try:
        t0 = time.monotonic()
        in_parallel(send, payloads)
        publish_s = time.monotonic() - t0
        window = _consume_in_processes(_redis_consumer, (settings, stream, prefetch, len(payloads)), consumers)
    finally:
        client.unlink(stream)
        client.srem(space.registry, stream)
        client.close()
    return publish_s, window


def _consume_in_processes(target, args: tuple, count: int,
                          gate: tuple[Path, Callable[[], bool], str] | None = None) -> Window:
    """``count`` consumer processes (like the stacks' workers), each reporting (pid, its completions).
    ``gate`` (path, ready, what): once ``ready()``, the path is created (the Kafka members' start gate)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, out)) for _ in range(count)]
    for p in procs:
        p.start()
    if gate is not None:
        path, ready, what = gate

        def go() -> bool:
            if died := [p.exitcode for p in procs if p.exitcode not in (None, 0)]:
                raise RuntimeError(f"a raw consumer process exited with {died[0]} before the start: {what}")
            return ready()
        try:
            wait_for(go, timeout=120, interval=0.1, what=what)
        except BaseException:
            for p in procs:
                p.kill()
            raise
        path.touch()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(10)
    return _window(results)


def _window(results: list[tuple[int, Done]]) -> Window:
    """The same steady window as a stack's (timings rows: key, sent, started, finished, cpu, thread, pid)."""
    from queuekit.bench.measure import steady

    rows = [(key, None, None, at, None, 0, pid) for pid, done in results for key, at in done]
    numbers = steady(rows)
    return Window(numbers["rate"], len(rows), numbers["window_share"])


__all__ = ["Window", "rabbitmq_baseline", "kafka_baseline", "kafka_batch_baseline", "redis_baseline"]
