"""The wire format every stack sends: a JSON envelope around one workload message.

JSON only, never pickle: a message body can be read by any consumer, and a
malformed one is rejected with a reason instead of executing anything.

    {"id": "9f1c...", "schema": "track.event", "version": 1,
     "body": {"user_id": 7, "seq": 3, "kind": "view", "ts": 1700000000.0},
     "sent_at": 1700000000.123, "headers": {}}

``decode`` raises ``MalformedMessage(reason)`` for anything else; adapters
dead-letter such a message with ``err.reason`` and never retry it.

Headers (all optional; other keys pass through untouched):

- fault directives, injected by the harness and applied by ``execute.process``:
  ``{"fault": "fail-times", "n": 2}``   raise TransientError on attempts 1..n, then succeed
  ``{"fault": "always-fail"}``          raise PermanentError on every attempt (a poison message)
  ``{"fault": "slow", "seconds": 0.5}`` take that long before handling (a slow worker)
  ``{"fault": "cpu", "rounds": 1300}``  burn CPU first (sha256 rounds; 13k ~ 10 ms) — bench's CPU-bound mode
  ``{"fault": "crash", "at": "after-effect" | "after-output"}`` the worker process dies there, first attempt only
- ``{"idempotency": "off"}``: apply this message's effect even if its key was applied before
  Any directive may add ``"service": "video.thumbnail"`` to apply to that service only.
- ``{"upstream": {...}}``: the previous pipeline step's result, for transports
  that forward it inside the envelope (see ``execute.forward``).
"""
from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_type_hints

from queuekit.core.frozen import frozen
from workloads.messages import MESSAGE_TYPES, Message

ENVELOPE_FIELDS = ("id", "schema", "version", "body", "sent_at", "headers")
FAULTS = ("fail-times", "always-fail", "slow", "crash", "cpu")
CRASH_POINTS = ("after-effect", "after-output")


class MalformedMessage(ValueError):
    """The bytes are not a valid envelope; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Envelope:
    id: str  # unique per publish; a redelivery keeps it, a re-publish gets a new one
    schema: str
    version: int
    body: Message
    sent_at: float  # producer wall clock (time.time()), for end-to-end latency
    headers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The body's idempotency key."""
        return self.body.idempotency_key


def make_envelope(
    body: Message, headers: Mapping[str, Any] | None = None, *, id: str | None = None, sent_at: float | None = None
) -> Envelope:
    """Wrap a message for sending: schema and version come from its class."""
    return Envelope(
        id=id or uuid.uuid4().hex,
        schema=body.schema,
        version=body.version,
        body=body,
        sent_at=time.time() if sent_at is None else sent_at,
        headers=dict(headers or {}),
    )


def encode(env: Envelope) -> bytes:
    """The envelope as compact UTF-8 JSON."""
    doc = {
        "id": env.id,
        "schema": env.schema,
        "version": env.version,
        "body": asdict(env.body),
        "sent_at": env.sent_at,
        "headers": dict(env.headers),
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode(data: bytes) -> Envelope:
    """Parse and validate an envelope; raise ``MalformedMessage`` saying what is wrong."""
    try:
        text = bytes(data).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise MalformedMessage("not UTF-8") from None
    env = _decode_common(text)
    if env is not None:
        return env
    try:
        doc = _DECODER.decode(text)
    except ValueError:
        raise MalformedMessage("not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedMessage("not a JSON object")
    _check_names(doc, ENVELOPE_FIELDS)
    _check_type(doc, "id", str)
    _check_type(doc, "schema", str)
    _check_type(doc, "version", int)
    _check_type(doc, "body", dict)
    _check_type(doc, "sent_at", float)
    _check_type(doc, "headers", dict)
    message_type = MESSAGE_TYPES.get(doc["schema"])
    if message_type is None:
        raise MalformedMessage(f"unknown schema {doc['schema']!r}")
    if doc["version"] != message_type.version:
        raise MalformedMessage(f"unsupported version {doc['version']} of {doc['schema']!r}")
    _check_headers(doc["headers"])
    return Envelope(
        id=doc["id"],
        schema=doc["schema"],
        version=doc["version"],
        body=_decode_body(message_type, doc["body"]),
        sent_at=float(doc["sent_at"]),
        headers=doc["headers"],
    )


def _decode_common(text: str) -> Envelope | None:
    """The envelope every well-behaved producer sends, checked in one pass with exact types; None for
    anything else, which the full checks in ``decode`` then parse again and name (so this path may only
    accept, never reject, and must accept nothing they would refuse). A worker's per-message cost: a
    Kafka consumer record costs ~15 µs of Python in all, so validation must not cost as much again."""
    try:
        doc, end = _DECODER.scan_once(text, 0)  # the same C scanner json.loads runs, minus its Python wrapper
    except Exception:  # noqa: BLE001  (not JSON, leading whitespace, too deep, ...): the full path says why
        return None
    if end != len(text) or type(doc) is not dict or doc.keys() != _ENVELOPE_KEYS:
        return None
    schema, body, headers = doc["schema"], doc["body"], doc["headers"]
    message_type = MESSAGE_TYPES.get(schema) if type(schema) is str else None
    if message_type is None or type(doc["id"]) is not str or type(doc["version"]) is not int \
            or doc["version"] != message_type.version or type(doc["sent_at"]) is not float \
            or type(body) is not dict or type(headers) is not dict:
        return None
    names, exact = _exact_schema_of(message_type)
    if body.keys() != names or not all(type(body[name]) is kind for name, kind in exact):
        return None  # e.g. an int where a float is declared: the full path converts it
    _check_headers(headers)  # the same checks as the full path: its MalformedMessage stands
    return frozen(Envelope, id=doc["id"], schema=schema, version=doc["version"], body=message_type(**body),
                  sent_at=doc["sent_at"], headers=headers)


_ENVELOPE_KEYS = frozenset(ENVELOPE_FIELDS)


@functools.cache
def _exact_schema_of(message_type: type) -> tuple[frozenset[str], tuple[tuple[str, type], ...]]:
    hints, names = _schema_of(message_type)
    return frozenset(names), tuple((name, hints[name]) for name in names)


@functools.cache
def _schema_of(message_type: type) -> tuple[dict[str, type], list[str]]:
    """A message type's field types and names, worked out once: ``get_type_hints`` costs ~100 µs a call."""
    return get_type_hints(message_type), [f.name for f in fields(message_type)]


def _decode_body(message_type: type, body: dict) -> Message:
    hints, names = _schema_of(message_type)
    _check_names(body, names)
    for name in names:
        _check_type(body, name, hints[name])
    return message_type(**{name: float(body[name]) if hints[name] is float else body[name] for name in names})


def _check_headers(headers: dict) -> None:
    if "upstream" in headers and not isinstance(headers["upstream"], dict):
        raise MalformedMessage("header 'upstream' must be object")
    fault = headers.get("fault")
    if fault is None:
        return
    if fault not in FAULTS:
        raise MalformedMessage(f"unknown fault {fault!r}")
    if fault == "fail-times" and not (_is_type(headers.get("n"), int) and headers["n"] >= 0):
        raise MalformedMessage("fault 'fail-times' needs an int 'n' >= 0")
    if fault == "slow" and not (_is_type(headers.get("seconds"), float) and headers["seconds"] >= 0):
        raise MalformedMessage("fault 'slow' needs a number 'seconds' >= 0")
    if fault == "cpu" and not (_is_type(headers.get("rounds"), int) and headers["rounds"] >= 0):
        raise MalformedMessage("fault 'cpu' needs an int 'rounds' >= 0")
    if fault == "crash" and headers.get("at") not in CRASH_POINTS:
        raise MalformedMessage(f"fault 'crash' needs 'at' in {CRASH_POINTS}")
    if "service" in headers and not isinstance(headers["service"], str):
        raise MalformedMessage("header 'service' must be str")


def _check_names(doc: dict, expected: tuple[str, ...] | list[str]) -> None:
    if len(doc) == len(expected) and all(name in doc for name in expected):
        return  # the common case, in one pass; otherwise say which name is wrong
    for name in expected:
        if name not in doc:
            raise MalformedMessage(f"missing field {name!r}")
    for name in doc:
        if name not in expected:
            raise MalformedMessage(f"unexpected field {name!r}")


def _check_type(doc: dict, name: str, expected: type) -> None:
    if not _is_type(doc[name], expected):
        label = {dict: "object", float: "number"}.get(expected, expected.__name__)
        raise MalformedMessage(f"field {name!r} must be {label}")


def _is_type(value: object, expected: type) -> bool:
    if type(value) is expected:  # the common case (bool is its own type, so True never passes as int here)
        return True
    if isinstance(value, bool):  # JSON true/false is never a number here
        return expected is bool
    if expected is float:  # JSON has one number type: 3 is a fine duration
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one, reused: json.loads(..., kw) builds one per call
