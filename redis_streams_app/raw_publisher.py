"""Entries straight onto the stream, as any Redis client could append them (hostile inputs).

``RawPublisher(stack).send(item)`` appends to the workload's entry stream with a plain
``XADD <stream> * field value [field value …]``: ``item.payload`` as the one ``envelope`` field, or,
with the corpus's frame (``queuekit.suite.hostile``, ``via="redis_streams"``), ``fields``: any
field/value pairs as they are, in order, a name given twice included (``XADD`` keeps both).
Redis refuses nothing of that below its 512 MB bulk limit: every entry reaches the consumers.
"""
from __future__ import annotations

from queuekit.core.redis_client import connect
from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import frame_spec

from .topology import FIELD


class RawPublisher:
    def __init__(self, stack):
        self.stack = stack
        self.client = connect(stack.settings)
        self.last: str | None = None  # an entry is always readable: no coordinates needed to find it

    def close(self) -> None:
        self.client.close()

    def send(self, item: Hostile, workload: str = "signup") -> None:
        spec = frame_spec(item, "redis_streams")
        pairs = spec.get("fields") or [(FIELD, item.payload)]
        flat = [part for pair in pairs for part in pair]
        self.stack.parts.keys.record(self.stack.topology.entry_topic(workload))  # purge finds it by name
        self.client.execute_command("XADD", self.stack.topology.entry_topic(workload), "*", *flat)
