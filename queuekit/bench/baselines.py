"""Raw-client baselines: how fast each broker serves a bare consume + ack loop on this machine.

Same message size, same persistence and acknowledgement as the stacks (durable
queue, persistent messages, manual ack after "processing"; Kafka acks=all,
offsets stored after processing; Redis: a stream and a consumer group, XACK
after "processing", on the kit's AOF-everysec server), same number of consumer processes. A stack's
rate divided by its broker's baseline is the framework's cost.
"""
from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass

from bare import RDKAFKA_LOG, in_parallel
from queuekit.core.config import Settings


@dataclass(frozen=True)
class Window:
    """First receive to last ack across every consumer process."""

    first: float
    last: float
    count: int

    @property
    def rate(self) -> float:
        return self.count / (self.last - self.first) if self.last > self.first else 0.0


def _rabbit_consumer(url: str, queue: str, prefetch: int, stop_after: int, out: mp.Queue) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)  # the same in-flight bound the stacks use
    first = last = 0.0
    n = 0
    for method, _props, _body in ch.consume(queue, inactivity_timeout=2):
        if method is None:
            break
        if not first:
            first = time.time()
        ch.basic_ack(method.delivery_tag)  # manual ack after "processing" (nothing): at-least-once
        n, last = n + 1, time.time()
        if n >= stop_after:
            break
    out.put((first, last, n))
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


def _kafka_consumer(bootstrap: str, topic: str, group: str, total: int, out: mp.Queue) -> None:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.offset.store": False, "log_level": 0})
    c.subscribe([topic])
    first = last = 0.0
    n = 0
    idle_since = time.monotonic()
    while polling(first, idle_since):
        msg = c.poll(0.5)
        if msg is None or msg.error():
            continue
        idle_since = time.monotonic()
        if not first:
            first = time.time()
        c.store_offsets(msg)  # offset stored after "processing": at-least-once, as the stack does
        n, last = n + 1, time.time()
    out.put((first, last, n))
    c.close()


def _kafka_batch_consumer(bootstrap: str, topic: str, group: str, total: int, out: mp.Queue) -> None:
    """Written for throughput: ``consume(num_messages=…)``, the work per record, ONE commit per batch."""
    import json

    from confluent_kafka import Consumer

    from workloads.messages import SignupRequested
    from workloads.signup import welcome_email

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False,  # committed by us, once per batch, after the batch's work
                  "fetch.min.bytes": 65536, "fetch.wait.max.ms": 50, "log_level": 0})
    c.subscribe([topic])
    first = last = 0.0
    n = 0
    idle_since = time.monotonic()
    while polling(first, idle_since):
        batch = c.consume(num_messages=BATCH, timeout=0.5)
        if not batch:
            continue
        idle_since = time.monotonic()
        if not first:
            first = time.time()
        for msg in batch:
            if msg.error():
                continue
            doc = json.loads(msg.value() or b"{}")  # the same work as the bare programs: parse, build, compute
            welcome_email(SignupRequested(**doc["body"]))
            n += 1
        # After the whole batch's work: a crash before this re-delivers the batch (at-least-once).
        c.commit(asynchronous=False)
        last = time.time()
    out.put((first, last, n))
    c.close()


BATCH = 1000  # records per consume() call and per commit
IDLE_S = 2.0  # a consumer that saw nothing this long has drained its partitions
JOIN_S = 60.0  # before its first record a member waits for the group's join (seconds on a loaded machine)


def polling(first: float, idle_since: float) -> bool:
    """Keep polling: up to JOIN_S for the first record (the join is not idleness: a member that gave up
    after IDLE_S there read nothing, and the raw rate came out 0 in a CI run), then until IDLE_S without one."""
    return time.monotonic() - idle_since < (IDLE_S if first else JOIN_S)


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
    window = _consume_in_processes(consumer or _kafka_consumer,
                                   (settings.kafka_bootstrap, topic, f"{topic}.g", len(payloads)), consumers)
    admin.delete_topics([topic])
    return publish_s, window


def _redis_consumer(settings: Settings, stream: str, prefetch: int, stop_after: int, out: mp.Queue) -> None:
    from queuekit.core.redis_client import connect

    client = connect(settings)
    first = last = 0.0
    n = 0
    name = f"c{mp.current_process().pid}"
    idle = 0
    while n < stop_after and idle < 2:  # 2 s without an entry: the backlog is drained (as pika's inactivity_timeout)
        # COUNT = the stacks' prefetch; BLOCK 1 s (under the client's 2 s socket timeout)
        reply = client.xreadgroup("g", name, {stream: ">"}, count=prefetch, block=1000)
        idle = 0 if reply else idle + 1
        if not reply:
            continue
        for entry_id, _fields in reply[0][1]:
            if not first:
                first = time.time()
            client.xack(stream, "g", entry_id)  # XACK after "processing" (nothing), one per entry: at-least-once
            n, last = n + 1, time.time()
    out.put((first, last, n))
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


def _consume_in_processes(target, args: tuple, count: int) -> Window:
    """``count`` consumer processes (like the stacks' workers), each reporting (first, last, n)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, out)) for _ in range(count)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(10)
    return _window(results)


def _window(results: list[tuple[float, float, int]]) -> Window:
    got = [r for r in results if r[2]]
    if not got:
        return Window(0.0, 0.0, 0)
    return Window(min(r[0] for r in got), max(r[1] for r in got), sum(r[2] for r in got))


__all__ = ["Window", "rabbitmq_baseline", "kafka_baseline", "kafka_batch_baseline", "redis_baseline"]
