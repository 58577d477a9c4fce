"""RQ job hashes straight onto Redis with redis-py, as any producer sharing the database could write them.

``RawPublisher(stack).send(item)`` writes ``rq:job:<id>`` (the hash RQ's ``Job.save`` writes: ``data`` is
the zlib-compressed JSON call ``[function, instance, args, kwargs]``) for the ``signup`` job with
``item.payload`` as its argument, and pushes the id onto ``rq:queue:signup``. The corpus's RQ inputs
(``queuekit.suite.hostile``, ``via="rq"``) override hash fields (``fields``), the call (``call``) or the
``data`` bytes as they are (``data``: e.g. a pickle).
"""
from __future__ import annotations

import json
import uuid
import zlib
from datetime import datetime, timezone

from queuekit.stacks.wires import HostileFrame as Hostile
from queuekit.stacks.wires import frame_spec

from .jobs import JOB_TIMEOUT_S, signup

FUNCTION = f"{signup.__module__}.{signup.__name__}"


class RawPublisher:
    def __init__(self, stack):
        self.stack = stack
        self.last = None  # (a Kafka wire's landing spot: not used on Redis)

    def close(self) -> None:
        return None  # the stack's client stays open

    def send(self, item: Hostile, queue: str = "signup") -> None:
        spec = frame_spec(item, "rq")
        call = spec.get("call") or [FUNCTION, None, [item.payload.decode("utf-8", "surrogateescape")], {}]
        data = spec.get("data") or json.dumps(call).encode()
        job_id = str(uuid.uuid4())
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = {"data": zlib.compress(data), "origin": queue, "description": "raw", "status": "queued",
                  "created_at": stamp, "enqueued_at": stamp, "timeout": str(JOB_TIMEOUT_S), **spec.get("fields", {})}
        client = self.stack.client
        with client.pipeline(transaction=True) as pipe:  # what Queue.enqueue does: the hash, then the id
            pipe.hset(f"rq:job:{job_id}", mapping=fields)
            pipe.sadd("rq:queues", f"rq:queue:{queue}")
            pipe.rpush(f"rq:queue:{queue}", job_id)
            pipe.execute()
