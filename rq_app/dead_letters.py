"""Reading RQ's failed-job registry back (the driver's ``RQStack.dead_letters``), whatever the job hash holds.

The registry (``rq:failed:<queue>``, a sorted set of job ids) is read without consuming it; each job hash is
read raw (HGETALL), never through ``Job.fetch``: a stranger's hash (pickled data, a field RQ cannot parse)
is still read, and nothing is unpickled. Payload: the job's envelope argument when its ``data`` is the JSON
call RQ's serializer wrote, else the ``data`` bytes as they are. Reason: the last line of the newest failure
in the job's results stream (``rq:results:<id>``, field ``exc_string``: base64 of zlib, RQ 2+), or of the
hash's older ``exc_info`` field.
"""
from __future__ import annotations

import base64
import binascii
import json
import zlib

from queuekit.stacks.base import DeadLetter

from .topology import JOB_PREFIX


def _unzipped(raw: bytes) -> bytes:
    try:
        return zlib.decompress(raw)
    except zlib.error:  # RQ falls back to the bytes as they are too
        return raw


def payload_of(data: bytes) -> bytes:
    """The envelope argument of a JSON job call ``[func, instance, args, kwargs]``; else the bytes."""
    try:
        call = json.loads(data)
        arg = call[2][0]
    except (ValueError, TypeError, IndexError, KeyError):
        return data
    return arg.encode("utf-8", "surrogateescape") if isinstance(arg, str) else data


def failure_text(client, job_id: bytes, fields: dict) -> str:
    for _, entry in client.xrevrange(b"rq:results:" + job_id, count=10):
        if b"exc_string" in entry:
            try:
                return zlib.decompress(base64.b64decode(entry[b"exc_string"])).decode("utf-8", "replace")
            except (binascii.Error, zlib.error):
                return entry[b"exc_string"].decode("utf-8", "replace")
    return _unzipped(fields.get(b"exc_info", b"")).decode("utf-8", "replace")


def read(client, service: str, registry_key: str) -> list[DeadLetter]:
    dead = []
    for job_id in client.zrange(registry_key, 0, -1):
        fields = client.hgetall(JOB_PREFIX.encode() + job_id)
        exc = failure_text(client, job_id, fields).strip()
        reason = exc.splitlines()[-1] if exc else f"no exc_info on job {job_id.decode(errors='replace')}"
        dead.append(DeadLetter(service, payload_of(_unzipped(fields.get(b"data", b""))), reason))
    return dead
