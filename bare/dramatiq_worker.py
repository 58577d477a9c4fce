"""A plain Dramatiq broker, actor and worker: confirms on, the kit's threads and prefetch, default middleware.

``python -m bare.dramatiq_worker QUEUE``. Runs ``dramatiq.Worker``
in this process (as the kit's stack does) until SIGTERM.
"""
from __future__ import annotations

import signal
import sys
import threading

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from queuekit.core.config import Settings, settings
from queuekit.core.options import options_from_env

from . import Backlog, in_parallel
from .work import work


def make(queue: str) -> tuple[RabbitmqBroker, dramatiq.Actor]:
    broker = RabbitmqBroker(url=settings().pika_url, confirm_delivery=True)  # publisher confirms, as the stack
    actor = dramatiq.actor(actor_name="bare_work", queue_name=queue, broker=broker)(work)
    return broker, actor


def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], queue: str,
                    partitions: int) -> Backlog:
    """Dramatiq's own producer, confirmed, from ``bare.PUBLISHERS`` threads (keys, partitions: no meaning here)."""
    broker, actor = make(queue)

    def send(part: list[str]) -> None:
        for payload in part:
            actor.send(payload)  # confirm_delivery: returns once RabbitMQ has it (a channel per thread)

    in_parallel(send, payloads)
    broker.close()

    def cleanup() -> None:
        import pika  # Dramatiq's RabbitMQ client

        conn = pika.BlockingConnection(pika.URLParameters(config.pika_url))
        channel = conn.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        conn.close()

    return Backlog(["-m", "bare.dramatiq_worker", queue], cleanup)


if __name__ == "__main__":
    options = options_from_env()
    broker, _ = make(sys.argv[1])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, queues={sys.argv[1]}, worker_threads=options.concurrency)
    worker.queue_prefetch = options.prefetch  # basic.qos on the consumer channel, as the stack
    worker.start()  # acks after the actor returns: Dramatiq's only mode
    stopping.wait()
    worker.stop(timeout=5_000)
    broker.close()
