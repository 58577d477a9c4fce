"""What every bare-framework program does per message: the same work as the stacks, nothing of the kit.

Parse the JSON envelope, build the workload message, act out the bench mode
found in its headers (5 ms of I/O wait or ~2 ms of hashing, as
``queuekit.core.execute.apply_fault`` does), compute the welcome email
(the signup handler's domain work) and record a completion timestamp in
memory (``queuekit.core.timings``, the same recorder the stacks use in the
bench). No envelope validation, no ledger, no fault machinery: that
difference is the harness overhead the bench reports.
"""
from __future__ import annotations

import json
import os
import time

from queuekit.core.timings import TIMINGS_DIR_ENV, Timings
from workloads.messages import SignupRequested
from workloads.signup import welcome_email
from workloads.video import burn

_recorder: Timings | None = None


def recorder() -> Timings:
    global _recorder
    if _recorder is None:
        _recorder = Timings.for_dir(os.environ[TIMINGS_DIR_ENV])
    return _recorder


def work(payload: str | bytes) -> None:
    started = time.time()
    doc = json.loads(payload)
    msg = SignupRequested(**doc["body"])
    fault = doc["headers"].get("fault")
    if fault == "slow":
        time.sleep(doc["headers"]["seconds"])
    elif fault == "cpu":
        burn(b"bench", doc["headers"]["rounds"])
    welcome_email(msg)
    recorder().record(msg.idempotency_key, doc["sent_at"], started)
