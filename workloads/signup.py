"""Signup: one welcome email per sign-up, written to an outbox (a work queue).

The effect is the outbox row. The handler does not know where the outbox
lives: the ledger hands it an ``Outbox`` bound to the same transaction that
claims the idempotency key, so the email and the key commit together
("effectively once"): a redelivered message finds the key taken and writes
nothing.
"""
from __future__ import annotations

import random
from typing import Protocol

from .messages import SignupRequested

SERVICE = "signup"


class Outbox(Protocol):
    """The port the handler writes to. ``add`` must only stage the row: the caller commits."""

    def add(self, recipient: str, subject: str) -> None: ...


def welcome_email(msg: SignupRequested) -> dict:
    """The email a sign-up should produce (pure; also the effect's recorded payload)."""
    return {"recipient": msg.email, "subject": f"Welcome aboard, user {msg.user_id}!"}


def send_welcome_email(email: dict, outbox: Outbox) -> dict:
    """Stage ``email`` (what ``welcome_email`` computed) in ``outbox`` and return what was staged."""
    outbox.add(recipient=email["recipient"], subject=email["subject"])
    return email


def make_messages(n: int, seed: int = 0) -> list[SignupRequested]:
    """``n`` sign-ups by distinct users (deterministic for a seed); keys are unique."""
    rng = random.Random(seed)
    user_ids = rng.sample(range(1, 10 * n + 1), n) if n > 0 else []
    return [
        SignupRequested(user_id=uid, email=f"user{uid}@example.test", idempotency_key=f"signup-{uid}")
        for uid in user_ids
    ]
