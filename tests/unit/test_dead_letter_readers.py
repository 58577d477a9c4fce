"""Every stack's dead-letter reader reads any frame at all: a DLQ is where the worst input ends."""
from __future__ import annotations

import json

import pytest

from celery_app.dead_letters import dead_letter as celery_dead_letter
from dramatiq_app.dead_letters import dead_letter as dramatiq_dead_letter

FRAMES = [
    b"",
    b"\xff\xfe\x00",
    b"[" * 100_000 + b"]" * 100_000,  # json.loads would hit RecursionError
    json.dumps([[{"__type__": "base64", "__value__": "!!not base64!!"}], {}, {}]).encode(),
    json.dumps({"args": [123], "options": ["not", "a", "dict"]}).encode(),
    json.dumps({"queue_name": "q", "actor_name": "a", "args": [], "kwargs": {}, "options": {"traceback": 5}}).encode(),
]
HEADERS = [{}, {"x-death": "not a list"}, {"x-death": [1, 2]}, {"task": ["a", "list"]},
           {"x-queuekit-reason": 42, "x-queuekit-frame": "celery"}, None]


@pytest.mark.parametrize("read", [celery_dead_letter, dramatiq_dead_letter])
@pytest.mark.parametrize("frame", FRAMES)
def test_any_frame_is_read(read, frame):
    for headers in HEADERS:
        dead = read("signup", frame, headers)
        assert isinstance(dead.reason, str) and dead.reason
        assert isinstance(dead.payload, (bytes, bytearray))
