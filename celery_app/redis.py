"""Celery over Redis: kombu's ``redis://`` (or ``sentinel://``) transport, configured for the same app.

The tasks, routes and queues are celery_app's own; only the broker URL and the
transport options change (``make_app`` applies ``overrides`` when
``options.transport`` is ``"redis"``, which ``CeleryRedisStack`` sets).

What the transport does (kombu 5.7 ``kombu/transport/redis.py``, a virtual transport):

* a queue is a Redis LIST; a publish is LPUSH of kombu's JSON message (body base64), a
  consumer BRPOPs it; a direct exchange's bindings are a SET ``_kombu.binding.<exchange>``;
* acks are emulated: a delivered message is copied into the HASH ``unacked`` (tag -> message)
  and the ZSET ``unacked_index`` (tag -> delivery time); an ack removes both entries;
* an entry older than ``visibility_timeout`` is pushed back onto its queue by whichever
  consumer's sweep (``restore_visible``) finds it first: the worker that holds it may still be
  running it. Nothing counts these redeliveries (no delivery count: no broker dead-lettering);
* a fanout exchange is PUB/SUB: only a consumer subscribed at that moment receives a copy
  (not stored, lost when nobody listens); the stack sends producer-side copies instead;
* ``global_keyprefix`` puts every key (lists, bindings, unacked, pub/sub channels) under
  ``<install prefix>celery_redis:``: the stack's purge and compare's other Redis stacks rely on it.
"""
from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions
from queuekit.core.redis_client import SERVICE, SOCKET_TIMEOUT

TRANSPORT: Final = "redis"
NAMESPACE: Final = "celery_redis"  # the stack's name: its keys are <install prefix>celery_redis:…
# A task still running after this long is handed to another worker too (kombu's default: 1 hour). 10 s: above
# every task of the suite but the lease scenario's, so a crashed worker's task comes back within a cell's
# time; ``options.record_lock_ms`` (the per-message lease, which the lease-expiry scenario sets to 2 s for its
# 5 s task) overrides it. In production: longer than any task AND any countdown/eta (the worker holds an eta
# task unacked until it is due, and it is delivered again meanwhile).
VISIBILITY_TIMEOUT_S: Final = 10.0
RESTORE_SWEEP_S: Final = 1  # how often each worker looks for expired unacked entries (kombu: 10 s x throttle 10)


def wanted(options: StackOptions) -> bool:
    return options.transport == TRANSPORT


def visibility_timeout(options: StackOptions) -> float:
    """Seconds an unacked message may stay with its worker: the run's per-message lease, else 10 s."""
    return options.record_lock_ms / 1000 if options.record_lock_ms else VISIBILITY_TIMEOUT_S


def key_prefix(settings: Settings) -> str:
    """kombu's ``global_keyprefix``: the install's Redis prefix + the stack's name (``qk:celery_redis:``);
    the same string as ``RedisParts(settings, "celery_redis").prefix`` on the harness side."""
    return f"{settings.redis_prefix}{NAMESPACE}:"


def broker_url(settings: Settings) -> str:
    """The kit's single node or an external URL as is; in the cluster topology kombu's ``sentinel://`` list (one
    per Sentinel) carrying the ACL user and password for the primary it finds (no secret on a command line:
    the URL is built in each process from the 0600 credentials file)."""
    if settings.clustered and not settings.external_redis_url:
        auth = f"{quote(settings.redis_user, safe='')}:{quote(settings.redis_password, safe='')}@"
        return ";".join(f"sentinel://{auth}{host}:{port}/0" for host, port in settings.redis_sentinels)
    return settings.redis_url


def overrides(options: StackOptions, settings: Settings) -> dict[str, Any]:
    """Celery settings that differ from the RabbitMQ app's (make_app applies them last)."""
    transport: dict[str, Any] = {
        # [topology:*@celery_redis] every key kombu makes (queue lists, bindings, unacked, pub/sub channels) under
        # the stack's own prefix: compare runs four Redis stacks side by side, and an external Redis is shared
        "global_keyprefix": key_prefix(settings),
        # [semantics:ack-timing@celery_redis] an unacked message older than this is restored to its queue, delivered
        # again, even while its worker is still running it (acks_late: the ack comes after the task)
        "visibility_timeout": visibility_timeout(options),
        "unacked_restore_interval": RESTORE_SWEEP_S,
        "unacked_restore_throttle": 1,  # scan on every sweep (kombu: every 10th)
        # a paused or cut-off primary is noticed in 2 s, as by every other client of the kit (core/redis_client)
        "socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": SOCKET_TIMEOUT,
        "health_check_interval": 5,  # kombu also drops a BRPOP connection whose reply is this overdue
    }
    if settings.clustered and not settings.external_redis_url:
        transport.update({
            "master_name": SERVICE,  # the name the Sentinels monitor the primary under
            # the Sentinels refuse anyone but the kit's ACL user
            "sentinel_kwargs": {"username": settings.redis_user, "password": settings.redis_password,
                                "socket_timeout": SOCKET_TIMEOUT},
        })
    from . import redis_transport  # registers the kit's transport aliases with kombu

    return {
        # kombu's Redis transport with unreadable list items dead-lettered, not fatal (redis_transport.py)
        # (options.stock_framework, the framework-drops scenario: kombu's own, which dies on them)
        "broker_transport": None if options.stock_framework
        else redis_transport.SENTINEL_ALIAS if "master_name" in transport else redis_transport.ALIAS,
        "broker_transport_options": transport,
        # [semantics:prefetch@celery_redis] kombu's virtual QoS: at most prefetch x concurrency messages delivered
        # and not acked per worker; each sits in the unacked hash meanwhile and its visibility clock runs
        "worker_prefetch_multiplier": options.prefetch,
    }
