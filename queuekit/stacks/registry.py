"""Every stack the kit knows, by alias, imported lazily (kombu's transport table).

The CLI, the bench, the scenario suite and the tests all take their stack
names from here: adding a stack is one line below plus its app package.
A user without, say, Kafka's client installed still runs the others.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Stack

# alias -> "module:Class" (imported on first use). A test may add a Stack class itself for a while
# (``monkeypatch.setitem(STACKS, "stub", StubStack)``): the in-memory StubStack is never listed here.
STACKS: dict[str, str | type[Stack]] = {
    "celery": "celery_app.stack:CeleryStack",
    "celery_quorum": "celery_app.stack:CeleryQuorumStack",  # the same app on quorum queues
    "dramatiq": "dramatiq_app.stack:DramatiqStack",
    "dramatiq_quorum": "dramatiq_app.stack:DramatiqQuorumStack",
    "kafka": "kafka_app.stack:KafkaStack",
    "kafka_share": "kafka_share_app.stack:KafkaShareStack",
    "rabbitmq_stream": "rabbitmq_stream_app.stack:RabbitMQStreamStack",
    "celery_kafka": "celery_app.kafka_stack:CeleryKafkaStack",  # the Celery app over kombu's confluentkafka
}


# The same app on another broker setup: a column of the comparison, not a separate framework.
VARIANT_OF: dict[str, str] = {"celery_quorum": "celery", "dramatiq_quorum": "dramatiq", "celery_kafka": "celery"}


def stack_names() -> tuple[str, ...]:
    """The columns of the comparison, in order."""
    return tuple(STACKS)


def framework_stacks() -> tuple[str, ...]:
    """One stack per framework (no variants): the bench's default set."""
    return tuple(name for name in STACKS if name not in VARIANT_OF)


def load_stack(name: str) -> type[Stack]:
    try:
        target = STACKS[name]
    except KeyError:
        raise ValueError(f"unknown stack {name!r}; choose from {', '.join(STACKS)}") from None
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
