"""Probes for the cluster scenarios: the brokers' own client libraries, configured the way the stacks are.

Each probe publishes ``{"key", "seq"}`` records as a steady keyed stream and
consumes them, recording an effect *before* acknowledging (at-least-once), so
a lost record is the broker's doing and a duplicate is a redelivery. The
settings that decide the outcome sit on the lines that set them.
"""
from __future__ import annotations

import json
import threading
import time
import uuid

from queuekit.brokers.faults import kafka_isr, kafka_partition_leader, rabbit_queue_leader
from queuekit.core.config import Settings
from queuekit.core.waiting import wait_for

from .faults import KEYS, Recorder


def _paced(rate: float, stop: threading.Event):
    """Yield (key, seq) at ``rate`` per second until ``stop``; keys round-robin, seq per key."""
    interval, n, t_next = 1.0 / rate, 0, time.monotonic()
    while not stop.is_set():
        yield f"k{n % KEYS}", n // KEYS
        n += 1
        t_next += interval
        delay = t_next - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def _decode(body: bytes) -> tuple[str, int]:
    record = json.loads(body)
    return record["key"], int(record["seq"])


class KafkaProbe:
    broker = "kafka"

    def __init__(self, settings: Settings, acks: str = "all", min_insync: int = 2, rate: float = 100.0,
                 unclean: bool = False):
        self.settings, self.acks, self.min_insync, self.rate, self.unclean = settings, acks, min_insync, rate, unclean
        self.variant = f"acks={acks} min.insync={min_insync}" + (" unclean.leader.election" if unclean else "")
        self.topic = f"qk.cluster.{uuid.uuid4().hex[:8]}"
        self.done = threading.Event()
        self.consumer_thread: threading.Thread | None = None

    def _admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0})

    def setup(self) -> None:
        from confluent_kafka.admin import NewTopic

        # One partition: one leader to hurt, and per-key order is the partition's order.
        topic = NewTopic(self.topic, 1, 3, config={
            "min.insync.replicas": str(self.min_insync),
            # true: a replica outside the ISR may become leader when no ISR member is left (availability
            # over consistency: what it had not copied is truncated away). The cluster's default is false.
            "unclean.leader.election.enable": str(self.unclean).lower()})
        admin = self._admin()  # kept alive until the result: a collected client cancels it
        admin.create_topics([topic])[self.topic].result(30)
        wait_for(lambda: len(kafka_isr(self.settings, self.topic)) == 3, timeout=60,
                 what=f"{self.topic} with 3 in-sync replicas")

    def leader(self) -> int:
        return kafka_partition_leader(self.settings, self.topic)

    def start(self, rec: Recorder, stop: threading.Event) -> list[threading.Thread]:
        from confluent_kafka import Consumer, Producer

        producer = Producer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "acks": self.acks,  # all: leader + ISR (>= min.insync) have it; 1: the leader alone
            "enable.idempotence": self.acks == "all",  # retries without duplicates or reordering
            "linger.ms": 5,
            "delivery.timeout.ms": 20000,  # a record not acknowledged in 20 s is reported failed
            "request.timeout.ms": 5000,
            "log_level": 0,
        })
        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "group.id": f"{self.topic}.readers",
            "auto.offset.reset": "earliest",
            "enable.auto.offset.store": False,  # the offset is stored only after the effect (below)
            "auto.commit.interval.ms": 500,
            "session.timeout.ms": 6000,
            "log_level": 0,
        })
        consumer.subscribe([self.topic])

        def produce() -> None:
            for key, seq in _paced(self.rate, stop):
                def delivered(err, msg, key=key, seq=seq):
                    if err is None:
                        rec.on_confirmed(key, seq)
                    else:
                        rec.on_failed(key, seq, str(err))
                        rec.note(f"publish error: {err.name()}")
                rec.on_sent(key, seq)
                try:
                    producer.produce(self.topic, json.dumps({"key": key, "seq": seq}).encode(), key.encode(),
                                     on_delivery=delivered)
                except BufferError as exc:  # local queue full while no leader: counts as failed
                    rec.on_failed(key, seq, str(exc))
                producer.poll(0)
            producer.flush(30)  # every record gets its verdict before the drain

        def consume() -> None:
            while not self.done.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if (err := msg.error()) is not None:
                    rec.note(f"consume error: {err.name()}")
                    continue
                rec.on_effect(*_decode(msg.value() or b"{}"))
                consumer.store_offsets(msg)  # after the effect: a crash re-reads, never skips
            consumer.close()

        self.consumer_thread = threading.Thread(target=consume, name="probe-consumer", daemon=True)
        self.consumer_thread.start()
        producer_thread = threading.Thread(target=produce, name="probe-producer", daemon=True)
        producer_thread.start()
        return [producer_thread]

    def final_read(self) -> set[tuple[str, int]]:
        """Jepsen's final read: a fresh reader, no group, the whole partition up to its high watermark."""
        from confluent_kafka import Consumer, TopicPartition

        reader = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": f"{self.topic}.final",
                           "enable.auto.commit": False, "log_level": 0})
        try:
            _, high = reader.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=30)
            reader.assign([TopicPartition(self.topic, 0, 0)])
            found, position = set(), 0
            deadline = time.monotonic() + 60
            while position < high and time.monotonic() < deadline:
                msg = reader.poll(0.5)
                if msg is None or msg.error():
                    continue
                found.add(_decode(msg.value() or b"{}"))
                position = (msg.offset() or 0) + 1
            return found
        finally:
            reader.close()

    def close(self) -> None:
        self.done.set()
        if self.consumer_thread:
            self.consumer_thread.join(timeout=30)
        admin = self._admin()
        admin.delete_topics([self.topic])[self.topic].result(30)


class RabbitProbe:
    broker = "rabbitmq"

    def __init__(self, settings: Settings, queue_type: str = "quorum", confirms: bool = True,
                 rate: float = 100.0):
        self.settings, self.queue_type, self.confirms, self.rate = settings, queue_type, confirms, rate
        self.variant = f"{queue_type} {'confirms' if confirms else 'no-confirms'}"
        self.queue = f"qk.cluster.{queue_type}.{uuid.uuid4().hex[:8]}"  # never re-declared (see test_faults)
        self.done = threading.Event()
        self.consumer_thread: threading.Thread | None = None
        self.rec: Recorder | None = None

    def _params(self):
        import pika

        # Every node, in order: pika tries the next when one refuses. Heartbeat 5 s: a silent
        # (paused, cut off) node is noticed in ~10 s instead of the server's 60 s.
        return [
            pika.URLParameters(f"{u}?heartbeat=5&blocked_connection_timeout=10&socket_timeout=3"
                               f"&stack_timeout=6&connection_attempts=1")
            for u in self.settings.pika_urls]

    def _connect(self, rec: Recorder, role: str):
        import pika

        while not self.done.is_set():
            try:
                return pika.BlockingConnection(self._params())
            except (pika.exceptions.AMQPError, OSError) as exc:
                rec.note(f"{role} connect failed: {type(exc).__name__}")
                self.done.wait(0.5)  # back-off between rounds over the three nodes
        return None

    def setup(self) -> None:
        import pika

        with pika.BlockingConnection(self._params()) as conn:  # node 1 first: the queue's home / leader
            args = {"x-queue-type": self.queue_type}
            conn.channel().queue_declare(self.queue, durable=True, arguments=args)

    def leader(self) -> int:
        return rabbit_queue_leader(self.settings, self.queue)

    def start(self, rec: Recorder, stop: threading.Event) -> list[threading.Thread]:
        import pika

        self.rec = rec

        def produce() -> None:
            stream = _paced(self.rate, stop)
            pending = None  # the record being published when a connection breaks
            while not stop.is_set():
                conn = self._connect(rec, "producer")
                if conn is None:
                    return
                try:
                    ch = conn.channel()
                    if self.confirms:
                        ch.confirm_delivery()  # basic_publish returns once the queue's leader has it
                    for key, seq in stream:
                        pending = (key, seq)
                        rec.on_sent(key, seq)
                        body = json.dumps({"key": key, "seq": seq}).encode()
                        try:
                            ch.basic_publish("", self.queue, body, pika.BasicProperties(delivery_mode=2),
                                             mandatory=self.confirms)
                        except (pika.exceptions.NackError, pika.exceptions.UnroutableError) as exc:
                            rec.on_failed(key, seq, type(exc).__name__)
                            rec.note(f"publish {type(exc).__name__}")
                            continue
                        # Without confirms "confirmed" means the client sent it without an error:
                        # what a publisher without confirms believes.
                        rec.on_confirmed(key, seq)
                        pending = None
                    conn.close()
                    return
                except (pika.exceptions.AMQPError, OSError) as exc:
                    if pending:
                        rec.on_failed(*pending, type(exc).__name__)  # indeterminate: it may have landed
                        pending = None
                    rec.note(f"producer lost connection: {type(exc).__name__}")

        def consume() -> None:
            while not self.done.is_set():
                conn = self._connect(rec, "consumer")
                if conn is None:
                    return
                try:
                    ch = conn.channel()
                    ch.basic_qos(prefetch_count=50)
                    for method, _props, body in ch.consume(self.queue, inactivity_timeout=0.2):
                        if self.done.is_set():
                            break
                        if method is None:
                            continue
                        rec.on_effect(*_decode(body))
                        ch.basic_ack(method.delivery_tag)  # after the effect: at-least-once
                    conn.close()
                except (pika.exceptions.AMQPError, OSError) as exc:
                    rec.note(f"consumer lost connection: {type(exc).__name__}")
                    self.done.wait(0.2)

        self.consumer_thread = threading.Thread(target=consume, name="probe-consumer", daemon=True)
        self.consumer_thread.start()
        producer_thread = threading.Thread(target=produce, name="probe-producer", daemon=True)
        producer_thread.start()
        return [producer_thread]

    def final_read(self) -> set[tuple[str, int]]:
        """What is still in the queue after the drain (a consumer that stalled left it there): basic_get all."""
        import pika

        self.done.set()
        if self.consumer_thread:
            self.consumer_thread.join(timeout=30)
        errors: list[str] = []

        def read_once() -> tuple[set[tuple[str, int]]]:
            found: set[tuple[str, int]] = set()
            for params in self._params():  # node by node: one that just rejoined may not know the queue yet
                try:
                    with pika.BlockingConnection(params) as conn:
                        ch = conn.channel()
                        while True:
                            method, _props, body = ch.basic_get(self.queue, auto_ack=False)  # left in the queue
                            if method is None:
                                return (found,)
                            found.add(_decode(body))
                except (pika.exceptions.AMQPError, OSError) as exc:
                    errors.append(f"{params.host}: {exc!r}"[:160])
                    if self.rec is not None:
                        self.rec.note(f"final read refused by {params.host}: {exc!r}"[:60])
            raise RuntimeError(f"no node let the final read reach {self.queue}: {errors[-3:]}")

        # A node that paused itself (pause_minority) restarts after the heal; a classic queue on it
        # is unreachable until then: poll, with a deadline, until some node serves the queue.
        return wait_for(read_once, timeout=90, what=f"a node to serve {self.queue} for the final read",
                        describe=lambda: "; ".join(errors[-3:]))[0]

    def close(self) -> None:
        import pika

        self.done.set()
        if self.consumer_thread:
            self.consumer_thread.join(timeout=30)
        try:
            with pika.BlockingConnection(self._params()) as conn:
                conn.channel().queue_delete(self.queue)
        except pika.exceptions.AMQPError:
            pass
