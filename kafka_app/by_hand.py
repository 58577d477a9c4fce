"""The Kafka stack's workers run by hand: the consumer loop, ``python -m kafka_app.worker <workload>…``.

``queuekit worker kafka`` creates the topics with ``declare`` (the broker
does not auto-create them) and runs ``commands``; the README's "Run it
yourself" shows the same command line. Every process is a member of each
group of its workloads (``qk.<service>``) and of the retry groups.
"""
from __future__ import annotations

from collections.abc import Sequence

from queuekit.core.config import Settings
from queuekit.core.options import StackOptions

from . import clients, topology


def declare(settings: Settings, workloads: Sequence[str], options: StackOptions) -> None:
    """Entry, forward, retry and DLQ topics with ``options.partitions`` partitions (existing ones kept)."""
    names = list(dict.fromkeys(t for w in workloads for t in topology.topics(w)))
    topology.declare(clients.admin(settings), names, options.partitions)


def commands(workloads: Sequence[str], options: StackOptions, prefix: str) -> list[tuple[str, list[str], dict]]:
    return [(f"{prefix}-{i}", ["python", "-m", "kafka_app.worker", *workloads], {}) for i in range(options.workers)]
