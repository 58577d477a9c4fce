"""Raw-client latency curves: each broker family's plain Python client, paced exactly like the stacks.

For each family (RabbitMQ: pika; Kafka: confluent-kafka; RabbitMQ streams: rstream; Redis: redis-py) a
producer in the bench process and consumer processes, driven by ``measure.curve`` / ``measure.paced`` —
the same schedule code, the same latency (completion minus the message's INTENDED send time), the same
warm-up point — at the offered rates of the stack it is the reference for (``Stack.raw_reference``).

What a raw consumer does per message is what a stack's noop handler does at minimum: decode the JSON
envelope, record its completion through the same in-memory recorder (``core/timings.py``), then ack /
store the offset / XACK. What it does NOT do, and so what stays between the raw curve and a stack's: the
kit's envelope validation (typed decode, limits), the idempotency guard, ``core.process``'s bookkeeping,
dead-lettering, and the framework itself (its consumer threads, middleware, result handling).

Hop timestamps on 1 message in ``measure.SAMPLE_EVERY`` (flagged in its headers when the schedule is
built; an unflagged message costs one empty-dict test): the broker's append time where the protocol
carries one (Kafka: the raw topic is created with ``LogAppendTime``; streams: the chunk's timestamp;
Redis: the entry id's milliseconds; RabbitMQ's AMQP 0.9.1 carries none) and when the client handed the
message over (fetched), appended to ``<timings>/hops/<pid>.raw.jsonl`` as they happen (read like a stack's:
``core.timings.read_hops``).
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import bare
from queuekit.bench import measure
from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope
from queuekit.core.errors import KitError
from queuekit.core.timings import Timings, collect, count, read_hops
from queuekit.core.waiting import wait_for

POLL_S = 0.2  # an idle consumer looks at its stop flag this often (never while messages flow)
READY_S = 90.0  # consumers subscribed (a Kafka group: every member assigned) within this, on a loaded machine
STREAM_CREDIT = 10  # chunks sent ahead: the rabbitmq_stream stack's INITIAL_CREDIT, so both wait alike


class _Recorder:
    """A consumer process's side: the completion through the stacks' recorder, hops of sampled messages."""

    def __init__(self, timings_dir: str):
        self.dir = Path(timings_dir)
        self.timings = Timings.for_dir(self.dir)
        self.hop_file = open(self.dir / "hops" / f"{os.getpid()}.raw.jsonl", "a", buffering=1)  # noqa: SIM115 - process-long

    def ready(self, yes: bool = True) -> None:
        marker = self.dir / "ready" / str(os.getpid())
        marker.touch() if yes else marker.unlink(missing_ok=True)

    def done(self, body: bytes | str, fetched: float, appended: float | None) -> None:
        doc = json.loads(body)  # the least a handler does: decode the envelope
        # completion recorded BEFORE the caller acks, as a stack's effect is recorded before its ack
        self.timings.record(doc["id"], doc["sent_at"], time.time())
        if doc["headers"]:  # only a sampled message carries a header
            self.hop_file.write(json.dumps([doc["id"], appended, fetched]) + "\n")


def _pika_consumer(url: str, queue: str, prefetch: int, timings_dir: str, stop) -> None:
    import pika

    rec = _Recorder(timings_dir)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)  # the same in-flight bound the stacks use
    rec.ready()
    for method, _props, body in ch.consume(queue, inactivity_timeout=POLL_S):
        if method is None:
            if stop.is_set():
                break
            continue
        rec.done(body, time.time(), None)  # AMQP 0.9.1 carries no broker append time
        ch.basic_ack(method.delivery_tag)  # manual ack after the completion: at-least-once
    conn.close()


def _kafka_consumer(bootstrap: str, topic: str, timings_dir: str, stop) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer

    rec = _Recorder(timings_dir)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}.g", "auto.offset.reset": "earliest",
                  "enable.auto.offset.store": False, "log_level": 0})  # auto-commit of what we stored
    c.subscribe([topic], on_assign=lambda _c, parts: rec.ready(bool(parts)),
                on_revoke=lambda _c, _parts: rec.ready(False))
    while True:
        msg = c.poll(POLL_S)
        if msg is None:
            if stop.is_set():
                break
            continue
        if msg.error():
            continue
        kind, ms = msg.timestamp()
        rec.done(msg.value() or b"{}", time.time(), ms / 1000 if kind == TIMESTAMP_LOG_APPEND_TIME else None)
        c.store_offsets(msg)  # offset stored after the completion: at-least-once, as the stack does
    c.close()


def _stream_consumer(endpoint: dict, stream: str, credit: int, timings_dir: str, stop) -> None:
    from rstream import Consumer, ConsumerOffsetSpecification, OffsetType

    rec = _Recorder(timings_dir)

    async def main() -> None:
        consumer = Consumer(**endpoint)
        await consumer.start()

        async def on_message(body: bytes, ctx) -> None:
            rec.done(body, time.time(), ctx.timestamp / 1000)  # ctx.timestamp: the chunk's, in ms
            # nothing stored: a raw reader keeps its position in memory (the stack stores offsets)

        await consumer.subscribe(stream, on_message, initial_credit=credit,
                                 offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST, None))
        rec.ready()
        while not stop.is_set():
            await asyncio.sleep(POLL_S)
        await consumer.close()

    asyncio.run(main())


def _redis_consumer(settings: Settings, stream: str, prefetch: int, timings_dir: str, stop) -> None:
    from queuekit.core.redis_client import connect

    rec = _Recorder(timings_dir)
    client = connect(settings)
    name = f"c{os.getpid()}"
    rec.ready()
    while True:
        # COUNT = the stacks' prefetch; BLOCK POLL_S (under the client's socket timeout)
        reply = client.xreadgroup("g", name, {stream: ">"}, count=prefetch, block=int(POLL_S * 1000))
        if not reply:
            if stop.is_set():
                break
            continue
        fetched = time.time()
        for entry_id, fields in reply[0][1]:
            rec.done(fields[b"envelope"], fetched, int(entry_id.split(b"-")[0]) / 1000)  # id = append ms
            client.xack(stream, "g", entry_id)  # XACK after the completion, one per entry: at-least-once
    client.close()


class RawRun:
    """One family's raw producer (here) and consumer processes, for ``measure.curve``.

    Subclasses declare the client and implement ``declare`` / ``consumer`` / ``send`` / ``delete``."""

    client: ClassVar[str]
    reads_all: ClassVar[bool] = False  # every consumer reads every message (a stream), else they compete
    encoded = True  # sends the payloads built before the clock

    def __init__(self, settings: Settings, workdir: Path, consumers: int, prefetch: int):
        self.settings, self.consumers, self.prefetch = settings, consumers, prefetch
        self.name = f"bench.rawlat.{uuid.uuid4().hex[:6]}"
        self.timings_dir = workdir / f"{self.name}.timings"
        self.copies = consumers if self.reads_all else 1
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.procs: list[Any] = []

    @property
    def publishers(self) -> int:
        return bare.PUBLISHERS  # as a RabbitMQ / Redis stack's paced producer (Kafka overrides: one async producer)

    def declare(self) -> None:
        raise NotImplementedError

    def consumer(self) -> tuple[Callable, tuple]:
        raise NotImplementedError

    def send(self, thread: int, plan: measure.Plan, batch: list[int]) -> object:
        raise NotImplementedError

    def delete(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RawRun:
        for sub in ("ready", "hops"):
            (self.timings_dir / sub).mkdir(parents=True, exist_ok=True)
        self.declare()
        try:
            target, args = self.consumer()
            self.procs = [self.ctx.Process(target=target, args=(*args, str(self.timings_dir), self.stop),
                                           daemon=True) for _ in range(self.consumers)]
            for p in self.procs:
                p.start()
            wait_for(lambda: self._alive() and len(list((self.timings_dir / "ready").iterdir())) >= self.consumers,
                     timeout=READY_S, what=f"{self.consumers} raw {self.client} consumers subscribed")
        except BaseException:
            self.__exit__()  # the consumers stopped and what was declared deleted, then the error
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(15)
            if p.is_alive():
                p.kill()  # our own child, by its handle
        self.delete()

    def _alive(self) -> bool:
        if dead := [p.exitcode for p in self.procs if p.exitcode is not None]:
            raise KitError(f"a raw {self.client} consumer exited (exit codes {dead})")
        return True

    def key(self, env: Envelope) -> str:
        return env.id  # what ``_Recorder.done`` records

    def wait(self, n: int, timeout: float = 600) -> list[tuple]:
        wait_for(lambda: self._alive() and count(self.timings_dir) >= n * self.copies, timeout=timeout,
                 interval=0.1, what=f"{n} x {self.copies} completions from the raw {self.client} consumers")
        return collect(self.timings_dir)

    def hops(self) -> dict[str, tuple[float | None, float | None]]:
        return read_hops(self.timings_dir)


class PikaRun(RawRun):
    client = "pika"

    def declare(self) -> None:
        import pika

        self.conns = [pika.BlockingConnection(pika.URLParameters(self.settings.pika_url))
                      for _ in range(self.publishers)]  # one per producer thread: a connection is not thread-safe
        self.channels = [conn.channel() for conn in self.conns]
        self.channels[0].queue_declare(self.name, durable=True)
        for ch in self.channels:
            ch.confirm_delivery()  # each publish waits for the broker's confirm, as the stacks' do
        self.props = pika.BasicProperties(delivery_mode=2, content_type="application/json")  # persistent

    def consumer(self) -> tuple[Callable, tuple]:
        return _pika_consumer, (self.settings.pika_url, self.name, self.prefetch)

    def send(self, thread: int, plan: measure.Plan, batch: list[int]) -> object:
        for i in batch:
            self.channels[thread].basic_publish("", self.name, plan.payloads[i], self.props)
        return None

    def delete(self) -> None:
        self.channels[0].queue_delete(self.name)
        for conn in self.conns:
            conn.close()


class KafkaRun(RawRun):
    client = "confluent-kafka"

    @property
    def publishers(self) -> int:
        return 1  # one asynchronous producer, flushed per send, as the Kafka stacks publish

    def declare(self) -> None:
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        self.admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        # LogAppendTime: each record's timestamp is the broker's append (the hop "appended")
        topic = NewTopic(self.name, self.consumers, 1, config={"message.timestamp.type": "LogAppendTime"})
        self.admin.create_topics([topic])[self.name].result(30)
        self.producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap, "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5, "logger": bare.RDKAFKA_LOG})  # as the kafka stack's

    def consumer(self) -> tuple[Callable, tuple]:
        return _kafka_consumer, (self.settings.kafka_bootstrap, self.name)

    def send(self, thread: int, plan: measure.Plan, batch: list[int]) -> object:
        for i in batch:
            self.producer.produce(self.name, plan.payloads[i], key=plan.envelopes[i].body.partition_key)
        return self.producer.flush(30)  # sent = acknowledged by the broker (acks=all)

    def delete(self) -> None:
        self.admin.delete_topics([self.name])


class StreamRun(RawRun):
    client = "rstream"
    reads_all = True  # a 3.10 stream has no competing consumers: each reader reads all, as the stack's workers
    credit = STREAM_CREDIT

    def declare(self) -> None:
        from rstream import Producer

        parts = urlsplit(self.settings.amqp_url)
        user, password = self.settings.mgmt_auth
        self.endpoint: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": self.settings.rabbit_stream_port,
                         "username": user, "password": password, "vhost": self.settings.vhost}
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="raw-stream-producer", daemon=True).start()
        self.producer = Producer(**self.endpoint)
        self._call(self.producer.start())
        self._call(self.producer.create_stream(self.name))

    def _call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def consumer(self) -> tuple[Callable, tuple]:
        return _stream_consumer, (self.endpoint, self.name, self.credit)

    async def _send(self, bodies: list[bytes]) -> None:
        confirmed = asyncio.Event()
        left = [len(bodies)]

        def on_confirm(_status) -> None:
            left[0] -= 1
            if not left[0]:
                confirmed.set()

        for start in range(0, len(bodies), 500):  # a frame of at most 500 small messages, as the stack's
            await self.producer.send_batch(self.name, bodies[start:start + 500], on_publish_confirm=on_confirm)
        await asyncio.wait_for(confirmed.wait(), 30)  # sent = confirmed by the broker

    def send(self, thread: int, plan: measure.Plan, batch: list[int]) -> object:
        return self._call(self._send([plan.payloads[i] for i in batch]))  # raw bytes, no AMQP 1.0 framing

    def delete(self) -> None:
        self._call(self.producer.delete_stream(self.name, missing_ok=True))
        self._call(self.producer.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


class RedisRun(RawRun):
    client = "redis-py"

    def declare(self) -> None:
        from queuekit.core.redis_client import connect
        from queuekit.core.redis_keys import KeySpace

        self.clients = [connect(self.settings) for _ in range(self.publishers)]  # one per producer thread
        self.space = KeySpace(self.clients[0], self.settings.redis_prefix)
        self.stream = self.space.key("bench", "rawlat", self.name.rsplit(".", 1)[1])
        self.space.record(self.stream)
        self.clients[0].xgroup_create(self.stream, "g", id="0", mkstream=True)

    def consumer(self) -> tuple[Callable, tuple]:
        return _redis_consumer, (self.settings, self.stream, self.prefetch)

    def send(self, thread: int, plan: measure.Plan, batch: list[int]) -> object:
        pipe = self.clients[thread].pipeline(transaction=False)
        for i in batch:
            pipe.xadd(self.stream, {b"envelope": plan.payloads[i]})
        return pipe.execute()  # each reply is the entry's id: appended

    def delete(self) -> None:
        self.clients[0].unlink(self.stream)
        self.clients[0].srem(self.space.registry, self.stream)
        for client in self.clients:
            client.close()


RUNS: dict[str, type[RawRun]] = {"rabbitmq": PikaRun, "kafka": KafkaRun, "rabbitmq_stream": StreamRun,
                                 "redis": RedisRun}


def curve(settings: Settings, family: str, rates: list[float], seconds: float, workdir: Path, seed: int,
          max_messages: int, slots: int, prefetch: int, readers: int) -> dict[str, Any]:
    """The raw ``family`` client's points at ``rates``: ``slots`` competing consumers (a stream: ``readers``,
    each reading all, as the stack's worker processes)."""
    kind = RUNS[family]
    with kind(settings, workdir, readers if kind.reads_all else slots, prefetch) as run:
        points = measure.curve(run, rates, seconds, seed, max_messages)
    return {"family": family, "client": kind.client, "consumers": run.consumers, "points": points}


__all__ = ["RUNS", "RawRun", "curve"]
