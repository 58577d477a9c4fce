"""A plain Dramatiq RedisBroker, actor and worker: Dramatiq's own settings, the kit's threads and prefetch.

``python -m bare.dramatiq_redis_worker QUEUE``. Runs ``dramatiq.Worker`` in this process (as the
kit's stack does) until SIGTERM. Dramatiq's defaults throughout (60 s heartbeat timeout,
maintenance on 1 command in 1,000); only the namespace is the install's (``<prefix>bare.dramatiq_redis``),
so its keys never mix with a stack's or a stranger's, and the client is the kit's (``core.redis_client``).
"""
from __future__ import annotations

import signal
import sys
import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from queuekit.core.config import Settings, settings
from queuekit.core.options import options_from_env
from queuekit.core.redis_client import connect
from queuekit.core.redis_keys import KeySpace

from . import Backlog, in_parallel
from .work import work


def namespace(config: Settings) -> str:
    return f"{config.redis_prefix}bare.dramatiq_redis"


def make(queue: str, config: Settings | None = None) -> tuple[RedisBroker, dramatiq.Actor]:
    config = config or settings()
    broker = RedisBroker(client=connect(config), namespace=namespace(config))  # every key under the namespace
    actor = dramatiq.actor(actor_name="bare_work", queue_name=queue, broker=broker)(work)
    return broker, actor


def publish_backlog(config: Settings, payloads: list[str], keys: list[bytes], queue: str,
                    partitions: int) -> Backlog:
    """Dramatiq's own producer (one Lua call per message) from ``bare.PUBLISHERS`` threads (keys, partitions: no
    meaning here)."""
    broker, actor = make(queue, config)

    def send(part: list[str]) -> None:
        for payload in part:
            actor.send(payload)  # returns once the primary ran the enqueue script

    in_parallel(send, payloads)
    broker.client.close()

    def cleanup() -> None:
        client = connect(config)
        try:
            KeySpace(client, namespace(config) + ":").cleanup(sweep=True)  # by name, under the namespace only
        finally:
            client.close()

    return Backlog(["-m", "bare.dramatiq_redis_worker", queue], cleanup)


if __name__ == "__main__":
    options = options_from_env()
    broker, _ = make(sys.argv[1])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, queues={sys.argv[1]}, worker_threads=options.concurrency)
    worker.queue_prefetch = options.prefetch  # ids fetched ahead per consumer, as the stack
    worker.start()  # acks after the actor returns: Dramatiq's only mode
    stopping.wait()
    worker.stop(timeout=5_000)
    broker.close()
