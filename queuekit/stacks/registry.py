"""Every stack the kit knows, by alias, imported lazily (kombu's transport table).

The CLI, the bench, the scenario suite, the dashboard and the tests all take their stack names from
here: adding a stack is one line below plus its app package, whose Stack subclass declares everything
else about it (``queuekit/stacks/declaration.py``). Loading a class checks those declarations, so a
missing one fails at once, by name. A user without, say, Kafka's client installed still runs the others.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from queuekit.core.errors import KitError

from . import declaration

if TYPE_CHECKING:
    from .base import Stack

# alias -> "module:Class" (imported on first use). A test may add a Stack class itself for a while
# (``monkeypatch.setitem(STACKS, "stub", StubStack)``): the in-memory StubStack is never listed here.
STACKS: dict[str, str | type[Stack]] = {
    "celery": "celery_app.stack:CeleryStack",
    "celery_quorum": "celery_app.quorum:CeleryQuorumStack",  # the same app on quorum queues
    "dramatiq": "dramatiq_app.stack:DramatiqStack",
    "dramatiq_quorum": "dramatiq_app.quorum:DramatiqQuorumStack",
    "dramatiq_redis": "dramatiq_app.redis_stack:DramatiqRedisStack",  # the same actors on Dramatiq's RedisBroker
    "kafka": "kafka_app.stack:KafkaStack",
    "kafka_share": "kafka_share_app.stack:KafkaShareStack",
    "rabbitmq_stream": "rabbitmq_stream_app.stack:RabbitMQStreamStack",
    "celery_kafka": "celery_app.kafka_stack:CeleryKafkaStack",  # the Celery app over kombu's confluentkafka
    "redis_streams": "redis_streams_app.stack:RedisStreamsStack",  # plain redis-py consumer groups
    "celery_redis": "celery_app.redis_stack:CeleryRedisStack",  # the Celery app over kombu's Redis transport
    "rq": "rq_app.stack:RQStack",  # RQ, the simplest Python queue, JSON only, on a database of its own
}

_checked: set[type] = set()  # classes whose declarations passed (checked once per process)


def stack_names() -> tuple[str, ...]:
    """The columns of the comparison, in order."""
    return tuple(STACKS)


def framework_stacks() -> tuple[str, ...]:
    """One stack per framework (no declared ``variant_of``): the bench's default set."""
    return tuple(name for name in STACKS if load_stack(name).variant_of is None)


def app_package(name: str) -> str:
    """The top-level package of a registered stack's class: ``celery_kafka`` -> ``celery_app``."""
    return load_stack(name).__module__.split(".")[0]


def load_stack(name: str) -> type[Stack]:
    try:
        target = STACKS[name]
    except KeyError:
        raise ValueError(f"unknown stack {name!r}; choose from {', '.join(STACKS)}") from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    if target not in _checked:
        declaration.check(target)
        if target.name != name:
            raise KitError(f"STACKS[{name!r}] names {target.__qualname__}, whose name is {target.name!r}",
                           "make the registry alias and the class's name the same")
        _checked.add(target)
    return target
