"""Bare-framework twins of the stacks: the smallest idiomatic program of each framework, same work, same knobs.

``run(framework, settings, payloads, options, workdir)`` publishes the
payloads with the framework's own producer (confirmed), then starts
``options.workers`` worker processes on that backlog and returns once every
message has a completion timestamp (``queuekit.core.timings``). The bench
sets the kit's stack beside it: harness overhead = 1 - stack rate / bare rate.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions, options_env
from queuekit.core.timings import TIMINGS_DIR_ENV, collect, count
from queuekit.core.waiting import wait_for
from queuekit.stacks.pool import WorkerPool

FRAMEWORKS = ("celery", "dramatiq", "kafka")
TWIN = {"celery": "celery", "dramatiq": "dramatiq", "kafka": "kafka"}  # stack -> its bare framework program
# kafka_share (share groups) and rabbitmq_stream have no bare twin yet: the bench measures them alone.
START_GATE_ENV = "QUEUEKIT_START_GATE"  # a file that exists once the twin may start (kafka_worker)
# Parallel confirmed publishers: one waits an fsync per persistent message, several share it. Measured with
# 4 / 8 / 16 threads, 4,000 backlog messages: Celery 819 / 1,030 / 937 msgs/s, Dramatiq 1,179 / 1,603 / 1,643.
PUBLISHERS = 8

# librdkafka's log lines (e.g. "Purging 1 unserved events" as a producer closes) as Python log records,
# not stderr lines in the middle of the bench's progress
RDKAFKA_LOG = logging.getLogger("queuekit.bench.rdkafka")


def in_parallel(send: Callable[[list], object], items: list, publishers: int = PUBLISHERS) -> list:
    """``send`` each slice of ``items`` from its own thread (own connection); the results in slice order."""
    from concurrent.futures import ThreadPoolExecutor

    slices = [items[i::publishers] for i in range(publishers)]
    with ThreadPoolExecutor(publishers) as pool:
        return list(pool.map(send, [s for s in slices if s]))
BROKER = {"celery": "rabbitmq", "dramatiq": "rabbitmq", "kafka": "kafka"}


def _celery(settings: Settings, payloads: list[str], queue: str) -> tuple[list[str], Callable[[], None]]:
    from .celery_worker import bare_work, publisher

    app = publisher(queue)

    def send(part: list[str]) -> None:
        with app.producer_or_acquire() as producer:  # one pooled connection per thread
            for payload in part:
                bare_work.apply_async(args=[payload], producer=producer, queue=queue)  # waits for the confirm

    in_parallel(send, payloads)
    return ["-m", "queuekit.bench.bare.celery_worker", queue], lambda: _delete_queues(settings, [queue])


def _dramatiq(settings: Settings, payloads: list[str], queue: str) -> tuple[list[str], Callable[[], None]]:
    from .dramatiq_worker import make

    broker, actor = make(queue)
    def send(part: list[str]) -> None:
        for payload in part:
            actor.send(payload)  # confirm_delivery: returns once RabbitMQ has it (a channel per thread)

    in_parallel(send, payloads)
    broker.close()
    return (["-m", "queuekit.bench.bare.dramatiq_worker", queue],
            lambda: _delete_queues(settings, [queue, f"{queue}.DQ", f"{queue}.XQ"]))


def _kafka(settings: Settings, payloads: list[str], topic: str, partitions: int,
           keys: list[bytes]) -> tuple[list[str], Callable[[], None]]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "logger": RDKAFKA_LOG,
                         "linger.ms": 5, "partitioner": "murmur2_random"})  # the kit's producer settings
    for payload, key in zip(payloads, keys):
        while True:
            try:
                producer.produce(topic, payload.encode(), key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError(f"bare kafka: {len(producer)} records undelivered")

    def cleanup() -> None:
        admin.delete_topics([topic])

    return ["-m", "queuekit.bench.bare.kafka_worker", topic, f"{topic}.g"], cleanup


def _kafka_group_assigned(settings: Settings, topic: str, members: int) -> Callable[[], bool]:
    """True once the bare group is stable with ``members`` members owning every partition (the start gate's
    condition: see ``kafka_worker``)."""
    from queuekit.stacks.kafka import Admin

    admin = Admin(settings)
    return lambda: admin.groups_ready({f"{topic}.g": (topic, members)})


def _delete_queues(settings: Settings, queues: list[str]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(settings.pika_url))
    ch = conn.channel()
    for queue in queues:
        ch.queue_delete(queue)
    conn.close()


def run(framework: str, settings: Settings, payloads: list[str], keys: list[bytes], options: StackOptions,
        workdir: Path, timeout: float = 600) -> tuple[float, list[tuple]]:
    """Publish, then consume with fresh workers; returns (publish seconds, timing rows)."""
    import sys

    name = f"bare-{framework}-{uuid.uuid4().hex[:6]}"
    timings = workdir / f"{name}.timings"
    t0 = time.monotonic()
    if framework == "kafka":
        argv, cleanup = _kafka(settings, payloads, f"bench.{name}", options.partitions, keys)
    else:
        argv, cleanup = {"celery": _celery, "dramatiq": _dramatiq}[framework](settings, payloads, f"bench.{name}")
    publish_s = time.monotonic() - t0
    gate = workdir / f"{name}.go"
    pool = WorkerPool(name, workdir / "logs", env={TIMINGS_DIR_ENV: str(timings), START_GATE_ENV: str(gate),
                                                    **options_env(options)})
    try:
        for _ in range(options.workers):
            pool.spawn([sys.executable, *argv])
        if framework == "kafka":  # members hold their partitions paused until the whole group is assigned
            pool.wait_ready(_kafka_group_assigned(settings, argv[2], options.workers * options.concurrency),
                            timeout=120, what=f"bare kafka group of {options.workers * options.concurrency} members "
                                              f"owning every partition (logs: {pool.log_dir})")
        gate.touch()  # RabbitMQ twins never look at it: their workers consume from the start, as the stacks'
        wait_for(lambda: count(timings) >= len(payloads), timeout=timeout, interval=0.1,
                 what=f"{len(payloads)} completions from bare {framework} (logs: {pool.log_dir})")
    finally:
        pool.stop(timeout=10)
        cleanup()
    return publish_s, collect(timings)
