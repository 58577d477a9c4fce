"""The brokers the kit runs against: which, where, and their lifecycle.

``QUEUEKIT_BROKERS=local`` (default): RabbitMQ, Kafka, Redis and Flower as the kit's
own child processes. Setting ``QUEUEKIT_AMQP_URL`` / ``QUEUEKIT_KAFKA_BOOTSTRAP`` /
``QUEUEKIT_REDIS_URL`` swaps that broker for an external one the kit only uses. ``docker`` is for
machines with a Docker engine (see docker.py; not exercised on these machines).

``QUEUEKIT_TOPOLOGY=cluster``: 3 RabbitMQ nodes, 3 Kafka nodes and a Redis primary
with 2 replicas and 3 Sentinels instead of one each, every node in a network namespace
of its own so faults can cut it off (netlab.py, rabbitmq_cluster.py, kafka_cluster.py,
redis_cluster.py, faults.py). No Flower there.
"""
from __future__ import annotations

from queuekit.core.config import TOPOLOGIES, Settings
from queuekit.core.errors import KitError

from .base import Component, Say, Status
from .external import External
from .flower import Flower, FlowerRedis
from .kafka import Kafka
from .rabbitmq import RabbitMQ
from .redis import Redis

NAMES = ("rabbitmq", "kafka", "redis", "flower", "flower-redis")  # start order: each Flower needs its broker


def components(settings: Settings, names: tuple[str, ...] | None = None) -> list[Component]:
    """The components named (default: all; without a local Flower when its broker is external:
    ``queuekit up flower`` / ``flower-redis`` asks for one; without Redis in an external/docker mode that names
    none with QUEUEKIT_REDIS_URL: an external kit that only uses RabbitMQ and Kafka has no Redis to check)."""
    wanted = names or tuple(n for n in NAMES if (n != "flower" or not settings.external("rabbitmq"))
                            and (n != "flower-redis" or not settings.external("redis"))
                            and (n not in ("redis", "flower-redis") or settings.mode == "local"
                                 or settings.external_redis_url))
    unknown = set(wanted) - set(NAMES)
    if unknown:
        raise KitError(f"unknown component(s): {', '.join(sorted(unknown))}", f"choose from {', '.join(NAMES)}")
    if settings.mode not in ("local", "external", "docker"):
        raise KitError(f"QUEUEKIT_BROKERS={settings.mode!r} is not a mode", "use local, external or docker")
    if settings.topology not in TOPOLOGIES:
        raise KitError(f"QUEUEKIT_TOPOLOGY={settings.topology!r} is not a topology", "use single or cluster")
    built: dict[str, Component] = {}
    if settings.clustered and settings.mode == "local" and not settings.external_amqp_url:
        from .kafka_cluster import KafkaCluster
        from .rabbitmq_cluster import RabbitCluster
        from .redis_cluster import RedisCluster

        built = {"rabbitmq": RabbitCluster(settings), "kafka": KafkaCluster(settings),
                 "redis": External(Redis(settings), "QUEUEKIT_REDIS_URL") if settings.external_redis_url
                 else RedisCluster(settings)}
        return [built[n] for n in NAMES if n in wanted and n in built]  # Flower watches single nodes only
    rabbit, kafka = RabbitMQ(settings), Kafka(settings)
    built["rabbitmq"] = External(rabbit, "QUEUEKIT_AMQP_URL") if settings.external("rabbitmq") else rabbit
    built["kafka"] = External(kafka, "QUEUEKIT_KAFKA_BOOTSTRAP") if settings.external("kafka") else kafka
    built["redis"] = External(Redis(settings), "QUEUEKIT_REDIS_URL") if settings.external("redis") else Redis(settings)
    built["flower"] = Flower(settings)
    built["flower-redis"] = FlowerRedis(settings)  # the celery_redis workers' (a Flower watches one broker)
    return [built[n] for n in NAMES if n in wanted]


def up(settings: Settings, names: tuple[str, ...] | None = None, say: Say = lambda _: None) -> list[str]:
    """Start what is not running (reusing what is); return the names started now."""
    if settings.mode == "docker":
        from .docker import compose_up

        compose_up(settings, say)
    chosen = components(settings, names)
    if settings.clustered and len(chosen) > 1:  # six nodes: both clusters start side by side
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(chosen)) as pool:
            started = list(pool.map(lambda c: c.start(say), chosen))
        return [c.name for c, now in zip(chosen, started) if now]
    return [c.name for c in chosen if c.start(say)]


def down(settings: Settings, names: tuple[str, ...] | None = None, say: Say = lambda _: None) -> list[str]:
    """Stop what the kit started, in reverse start order; external brokers are left alone."""
    return [c.name for c in reversed(components(settings, names)) if c.stop(say)]


def statuses(settings: Settings, names: tuple[str, ...] | None = None) -> list[Status]:
    return [c.status() for c in components(settings, names)]


__all__ = ["Component", "Status", "NAMES", "components", "up", "down", "statuses"]
