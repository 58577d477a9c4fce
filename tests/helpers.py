"""Helpers shared by the broker tests: message builders and malformed payloads (one copy of each)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from queuekit.core.envelope import Envelope, make_envelope
from queuekit.stacks.registry import load_stack, stack_names
from workloads import WORKLOADS

# Complete and well-formed except one type, so the reason is about that field (not a missing one).
BAD_TYPE = (b'{"id": "bad-2", "schema": "signup.requested", "version": 1, "sent_at": 0, "headers": {},'
            b' "body": {"user_id": "7", "email": "a@example.com", "idempotency_key": "k-bad"}}')
NOT_UTF8 = b"\xff\xfe not even UTF-8"


def signups(count: int, seed: int = 1, *faults: dict, **headers) -> list[Envelope]:
    """``count`` sign-ups whose keys are unique across seeds (make_messages' keys repeat between seeds);
    the first ones get ``faults`` as headers, the rest ``headers``."""
    messages = [replace(m, idempotency_key=f"{m.idempotency_key}-{seed}")
                for m in WORKLOADS["signup"].make_messages(count, seed=seed)]
    return [make_envelope(m, faults[i] if i < len(faults) else headers) for i, m in enumerate(messages)]


def payload_of(env: Envelope, payloads: Iterable[bytes]) -> bytes:
    """The one dead-lettered payload that carries ``env`` (found by its id)."""
    [payload] = [p for p in payloads if env.id.encode() in p]
    return payload


def results_over_registry() -> dict:
    """Two scenarios on every registered stack: replay differs by capability, early-ack loses on some."""
    stacks = list(stack_names())
    cells = []
    for s in stacks:
        caps = load_stack(s).capabilities
        cells.append({"scenario": "replay", "stack": s, "observed": {"replayed": 20 if caps.replayable else 0},
                      "expected": {"replayed": "20 if replayable"}, "mismatches": [], "seconds": 1.0})
        cells.append({"scenario": "crash-mid-task-early-ack", "stack": s,
                      "observed": {"lost": 1 if caps.ack_on_receipt_possible else 0}, "expected": {"lost": ">= 0"},
                      "mismatches": [], "seconds": 1.0})
    return {"started": "fixture", "seconds": 2, "stacks": stacks, "environment": {},
            "families": {s: load_stack(s).capabilities.broker for s in stacks},
            "scenarios": [{"name": "replay", "concept": "replay", "question": "q"},
                          {"name": "crash-mid-task-early-ack", "concept": "ack", "question": "q"}],
            "cells": cells}
