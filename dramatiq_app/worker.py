"""One worker OS process: ``python -m dramatiq_app.worker <workload>...``.

Runs ``dramatiq.Worker`` in THIS process (not the ``dramatiq`` CLI, which forks
worker children: a SIGKILL of the parent would leave a child consuming and
holding messages). So the pid the stack kills is the one holding the
unacked deliveries, and RabbitMQ requeues them when its connections drop.

Threads: one consumer thread (own AMQP connection) per queue and per delay
queue, feeding an in-process work queue served by ``options.concurrency``
worker threads. SIGTERM/SIGINT: a warm shutdown (``Worker.stop``): running
actors finish and are acked, prefetched-but-unstarted messages go back to
RabbitMQ when the consumer connections close.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading

import dramatiq

from queuekit.core.logs import install_preview
from queuekit.core.worker_env import this_worker
from workloads import WORKLOADS

from . import actors  # noqa: F401  declares the actors (and their queues) on the global broker
from .broker import broker
from .by_hand import worker_timeout_ms
from .topology import queue_name


def main(workloads: list[str]) -> None:
    me = this_worker("dramatiq")
    options, name = me.options, me.name
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(threadName)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)  # one INFO line per connection step otherwise
    install_preview()  # Dramatiq logs a failed message with its whole body: a preview instead
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())

    broker.emit_after("process_boot")  # what the CLI does first: starts TimeLimit's and the shutdown notifier's hooks
    queues = {queue_name(s) for w in workloads for s in WORKLOADS[w].services}
    # worker_timeout is also how often a consumer wakes to move due messages out of its delay queue:
    # with Dramatiq's 1000 ms every retry waits >= ~1 s whatever its backoff; keep it under the first delay.
    worker_timeout = worker_timeout_ms(options)
    worker = dramatiq.Worker(broker, queues=queues, worker_threads=options.concurrency, worker_timeout=worker_timeout)
    # [semantics:prefetch] basic_qos(prefetch_count) on each queue's consumer channel. Dramatiq's default is
    # 2 * worker_threads (env dramatiq_queue_prefetch, read at import); in-progress messages count.
    # Delay queues keep Dramatiq's 1000 * threads: retries wait there, unacked, until their eta.
    # 0 is AMQP's "no limit".
    worker.queue_prefetch = options.prefetch
    worker.start()
    log = logging.getLogger(__name__)
    log.info("consuming %s with %d thread(s), prefetch %d", sorted(queues), options.concurrency, worker.queue_prefetch)
    # [semantics:ack-timing] Dramatiq acks only after the actor and its middleware ran: no ack-on-receipt mode
    if options.early_ack:
        log.warning("early_ack ignored: Dramatiq acks only after the actor and its middleware ran")
    stopping.wait()
    worker.stop(timeout=15_000)  # lets running actors finish (WorkerPool SIGKILLs after 20 s)
    broker.close()


if __name__ == "__main__":
    main(sys.argv[1:])
