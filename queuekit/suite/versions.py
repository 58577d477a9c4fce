"""The RabbitMQ version as a dimension of ``compare``: the RabbitMQ columns again, on a node of another version.

``queuekit compare --rabbitmq 3.10,4`` runs every stack on the first version (the kit's own node, as
``QUEUEKIT_RABBITMQ_VERSION`` would) and, for each further version, the stacks whose broker is RabbitMQ
again, as columns ``<stack>@<version>`` ("celery@4.3"), on a node of that version started beside the
kit's (``rabbitmq_root.beside``: 200 ports up, its own run directory) and stopped afterwards if compare
started it. The Redis and Kafka columns do not depend on it and run once. The report pairs ``celery``
with ``celery@4.3`` (``queuekit/report/versions.py``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from queuekit.brokers.rabbitmq_root import HOST_VERSION, NEWEST_4, resolve_version, why_not_runnable
from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.stacks.registry import load_stack

SEP = "@"  # "celery@4.3": stack celery on RabbitMQ 4.3


def column(stack: str, version: str) -> str:
    return f"{stack}{SEP}{version}"


def split_column(name: str) -> tuple[str, str | None]:
    """("celery", "4.3") for "celery@4.3"; ("celery", None) for a column on the run's own version."""
    stack, sep, version = name.partition(SEP)
    return (stack, version) if sep else (name, None)


def on_rabbitmq(stacks: Sequence[str]) -> list[str]:
    """The stacks whose broker is RabbitMQ: the columns another version repeats."""
    return [name for name in stacks if load_stack(name).capabilities.broker == "rabbitmq"]


def parse(spec: str) -> list[str]:
    """ "3.10,4" -> ["3.10", "4.3"]: each resolved ("4" is the newest 4.x), in order, once."""
    try:
        versions = [resolve_version(v.strip()) for v in spec.split(",") if v.strip()]
    except KitError as exc:
        raise KitError(f"--rabbitmq {spec!r}: {exc.what}".replace("QUEUEKIT_RABBITMQ_VERSION=", ""), exc.fix) from None
    if not versions:
        raise KitError(f"--rabbitmq {spec!r} names no version", "e.g. --rabbitmq 3.10,4")
    return list(dict.fromkeys(versions))


def default_versions(settings: Settings) -> tuple[list[str], str | None]:
    """(versions, why only one): compare's default. An explicit QUEUEKIT_RABBITMQ_VERSION, an external
    broker or the cluster topology: that one version. Otherwise 3.10 and the newest 4.x when this machine
    can run it (its root is cached, or root + mmdebstrap can build it); else 3.10 alone, saying why."""
    if os.environ.get("QUEUEKIT_RABBITMQ_VERSION") or settings.external("rabbitmq") or settings.clustered:
        return [resolve_version(settings.rabbitmq_version)], None
    why = why_not_runnable(settings, NEWEST_4)
    return ([HOST_VERSION], f"the RabbitMQ {NEWEST_4} columns are left out: {why}") if why \
        else ([HOST_VERSION, NEWEST_4], None)
