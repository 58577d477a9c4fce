"""CeleryRedisStack: the same Celery app and tasks over Redis (kombu's Redis transport).

"Celery + Redis", the setup most Celery teams run. One setting changes
(``options.transport = "redis"``: broker URL and transport options,
``celery_app/redis.py``); tasks.py, topology.py and worker.py are celery_app's
own: ``task_acks_late`` + ``task_reject_on_worker_lost`` as on RabbitMQ. The transport is kombu's with
one change (``redis_transport.py``): a list item kombu cannot read is dead-lettered with its reason
instead of making the worker exit (stock kombu's behaviour, observed).

What each option does here (beside ``CeleryStack``'s list):

* ``prefetch`` x ``concurrency``: kombu's virtual QoS, the messages a worker takes (BRPOP) before one is
  acked; each waits in the unacked hash meanwhile, and its visibility clock runs while it waits.
* ``early_ack``: acked (removed from the unacked hash) when the task starts: a SIGKILL loses it.
* ``queue_max_length``, ``queue_type``, ``delivery_limit``: RabbitMQ only, ignored (a Redis list has no
  bound: the publisher is never refused, the backlog grows).
* ``partitions``: unused.
* ``record_lock_ms``: the per-message lease, kombu's ``visibility_timeout`` (default 10 s,
  ``redis.VISIBILITY_TIMEOUT_S``; the lease-expiry scenario sets 2 s), swept every second.

The lease: a task still running after the visibility timeout is pushed back onto its queue and run
again by another worker while the first still runs it; nothing counts these redeliveries, so they
never dead-letter. A SIGKILLed worker's tasks come back the same way (acks_late), after the same
timeout. An eta/countdown is held unacked in the worker: one longer than the timeout is delivered
again meanwhile, to the next worker, and runs once per holder at its eta.

Key layout (every key under ``<install prefix>celery_redis:``, kombu's ``global_keyprefix``):
``celery.<service>`` (a LIST per queue; ``celery.<service>\\x06\\x16<n>`` for priority n > 0),
``celery.<service>.dlq`` (a LIST: our dead letters, kombu JSON), ``unacked`` (HASH tag -> message),
``unacked_index`` (ZSET tag -> delivery time), ``unacked_mutex``, ``_kombu.binding.<exchange>`` and
``_kombu.binding_permanent.<exchange>`` (SETs), ``<uuid>.reply.celery.pidbox`` (remote control
replies, expiring); pub/sub channels ``/0.celery.pidbox`` and ``/0.celeryev…`` (events, Flower).

* Supports Fanout: No (kombu's Redis fanout is PUB/SUB: a copy reaches only a consumer subscribed at
  that moment, none is stored): the producer sends one task per subscriber queue instead
* Supports per-key order: No (whichever worker is free BRPOPs the next message)
* Supports replay: No (an acked message is deleted)
* Dead letters: ``celery.<service>.dlq`` lists, written by our tasks (no DLX on Redis), read with LRANGE
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from celery import Celery
from kombu.utils.json import loads

from queuekit.core.config import Settings
from queuekit.core.envelope import Envelope, encode
from queuekit.core.options import StackOptions
from queuekit.stacks.base import DeadLetter, PublishReport
from queuekit.stacks.capabilities import Capabilities
from queuekit.stacks.declaration import ClusterPromise, RetryTiming
from queuekit.stacks.redis import RedisParts
from queuekit.stacks.reset import Purged
from workloads import WORKLOADS

from . import redis, topology
from .app import make_app
from .dead_letters import dead_letter, virtual_message
from .producer import ProducerSideFanout  # Redis fanout is PUB/SUB: a copy per subscriber instead
from .stack import CeleryStack

PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's Redis priority lists: <queue>, <queue>\x06\x163, ...
SEP = "\x06\x16"
UNACKED, UNACKED_INDEX, UNACKED_MUTEX = "unacked", "unacked_index", "unacked_mutex"


class CeleryRedisStack(ProducerSideFanout, CeleryStack):
    name = "celery_redis"
    capabilities = Capabilities(
        broker="redis",
        native_fanout=False,  # Redis fanout is PUB/SUB, lost when nobody listens: producer-side copies instead
        per_key_order=False,  # a work queue hands the next message to whichever worker BRPOPs first
        replayable=False,  # an acked message is deleted (removed from the unacked hash; the list item is gone)
        dead_letter="adapter",  # our tasks push failures to celery.<service>.dlq: Redis has no DLX
        ack_on_receipt_possible=True,  # task_acks_late=False
        transactions=False,
        pull_based=True,  # workers BRPOP; a list has no bound, nothing refuses the producer
        evicts_slow_consumer=False,  # no member is evicted: the visibility timeout takes back one message
        lease="record",  # the visibility timeout: one unacked message goes back to its queue mid-task
        delayed="framework",  # countdown/eta: a worker takes the task at once and holds it unacked until due
        # kombu's Channel._brpop_read pops the message (BRPOP), and only then does its QoS write it into the
        # unacked hash: a worker killed between the two loses it (the chaos kill loop saw 1 of 480, 7 kills)
        popped_before_tracked=True,
    )
    raw_publisher = "celery_app.raw_publisher:RedisRawPublisher"  # kombu's JSON message, LPUSHed
    observer = "celery_app.redis_observe"
    libraries = ("celery", "kombu", "redis", "flower")
    client_loggers = ("kombu", "celery")
    variant_of = "celery"
    own_vhost = False
    bare_twin = "bare.celery_redis_worker:publish_backlog"
    cluster = ClusterPromise({}, "kombu through Sentinel (sentinel:// + master_name): asynchronous replication, "
                             "so a primary kill may lose confirmed tasks: measured")
    retry_timing = RetryTiming()

    def __init__(self, settings: Settings, ledger_path: Path):
        super().__init__(settings, ledger_path)
        self.parts = RedisParts(settings, namespace=redis.NAMESPACE)

    def prepare_options(self, options: StackOptions) -> StackOptions:
        return replace(options, transport=redis.TRANSPORT)

    def _app(self) -> Celery:
        if self.app is None:
            self.app = make_app(self.options, config=self.settings)  # the driver's settings: single or cluster
        return self.app

    # -- producing (fan-out: a copy per subscriber queue, ProducerSideFanout) --------------------
    def publish_delayed(self, workload: str, envelopes: Sequence[Envelope], delay_s: float) -> PublishReport:
        """Celery's countdown: pushed at once, held UNACKED by the worker that takes it until it is due (the
        framework delays, not Redis). A delay beyond the visibility timeout is restored and delivered again
        meanwhile, to the next worker in turn (Celery's documented caveat on Redis)."""
        return self._send(workload, [encode(env).decode() for env in envelopes], countdown=delay_s)

    # -- the template's hooks -------------------------------------------------------------
    def consumers_ready(self) -> bool:
        """Redis keeps no list of consumers: every live worker answers Celery's remote control (pub/sub) with
        the queues its task consumer has subscribed."""
        return self._consuming() >= len(self.worker_pids())

    def _consuming(self) -> int:
        wanted = set(self._consumed_queues())
        live = len(self.worker_pids())
        replies = self._app().control.inspect(timeout=1.0, limit=live or None).active_queues() or {}
        return sum(wanted <= {q["name"] for q in queues} for queues in replies.values())

    def describe_consumers(self) -> str:
        return f"{self._consuming()} worker(s) answer with all of {self._consumed_queues()}"

    def close_clients(self) -> None:
        super().close_clients()
        self.parts.close()

    def kit_objects(self, workloads: Sequence[str] = tuple(WORKLOADS)):
        return []  # no manifest on Redis: every key is under the stack's own prefix (RedisParts)

    def _lists(self, queues: list[str]) -> list[str]:
        return [self.parts.key(q) + (f"{SEP}{p}" if p else "") for q in queues for p in PRIORITY_STEPS]

    def purge(self, workloads: Sequence[str] = tuple(WORKLOADS)) -> Purged:
        """The lists of ``workloads`` by name (queues and dead letters, counted) and their entries in kombu's
        unacked hash; with every workload also every other key under ``qk:celery_redis:`` (kombu's own
        bookkeeping, by a SCAN of the prefix). Never a key outside the prefix."""
        purged, client = Purged(), self.parts.client
        services = topology.services(workloads)
        dlqs = {topology.dlq_name(s): client.llen(self.parts.key(topology.dlq_name(s))) for s in services}
        purged.dead(dlqs)
        queues = [topology.queue_name(s) for s in services]
        self.parts.delete(self._lists(queues + list(dlqs)), purged, kind="list")
        if set(workloads) == set(WORKLOADS):
            unacked = [self.parts.key(k) for k in (UNACKED, UNACKED_INDEX, UNACKED_MUTEX)]
            purged.sweep(self.parts.prefix, self.parts.purge(unacked, sweep=True))
            return purged
        # a message of these queues held unacked (a worker killed mid-task) would come back after reset
        held = [tag for tag, e in client.hgetall(self.parts.key(UNACKED)).items() if loads(e)[2] in queues]
        if held:
            client.hdel(self.parts.key(UNACKED), *held)
            client.zrem(self.parts.key(UNACKED_INDEX), *held)
            purged.deleted("unacked message", [t.decode() if isinstance(t, bytes) else t for t in held])
        return purged

    # -- the broker's view ------------------------------------------------------------------
    def _queues(self, workload: str) -> list[str]:
        return [topology.queue_name(s) for s in WORKLOADS[workload].services]

    def _unacked(self, queues: list[str]) -> int:
        """Entries of the unacked hash (``[message, exchange, routing key]``) delivered from ``queues``."""
        entries = self.parts.client.hvals(self.parts.key(UNACKED))
        return sum(loads(e)[2] in queues for e in entries)

    def backlog(self, workload: str) -> int:
        """Ready (the lists, every priority) + delivered and not acked (the unacked hash)."""
        queues = self._queues(workload)
        pipe = self.parts.client.pipeline(transaction=False)
        for name in self._lists(queues):
            pipe.llen(name)
        return sum(pipe.execute()) + self._unacked(queues)

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        # No gap hides a message: a retry (held unacked until its eta) and the next chain step are pushed
        # before the current message is acked.
        from queuekit.core.waiting import wait_for

        wait_for(lambda: self.backlog(workload) == 0, timeout=timeout, what=f"{workload}: lists and unacked empty",
                 describe=lambda: f"backlog {self.backlog(workload)}")

    def in_flight(self) -> dict[str, int]:
        return {}  # pull-based: Redis does not know which worker took what (the unacked hash has no owner)

    def replay(self, workload: str, timeout: float = 20.0) -> int:
        """What a brand-new consumer of the entry queue could read: the list itself (acked = deleted)."""
        entry = topology.queue_name(topology.entry_services(workload)[0])
        return sum(self.parts.client.llen(name) for name in self._lists([entry]))

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """LRANGE of each ``.dlq`` list: read, not popped."""
        found = []
        for service in WORKLOADS[workload].services:
            for item in self.parts.client.lrange(self.parts.key(topology.dlq_name(service)), 0, -1):
                try:
                    body, headers = virtual_message(item)
                except (ValueError, TypeError, AttributeError) as exc:  # not kombu's JSON: still a dead letter
                    found.append(DeadLetter(service, item, f"unreadable dead letter: {type(exc).__name__}: {exc}"))
                    continue
                found.append(dead_letter(service, body, headers))
        return found

    def fault_target(self, service: str) -> str:
        return topology.queue_name(service)  # the list lives on the primary (one shard: every key does)
