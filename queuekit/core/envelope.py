"""The wire format every stack sends: a JSON envelope around one workload message.

JSON only, never pickle: a message body can be read by any consumer, and a
malformed one is rejected with a reason instead of executing anything.

    {"id": "9f1c...", "schema": "track.event", "version": 1,
     "body": {"user_id": 7, "seq": 3, "kind": "view", "ts": 1700000000.0},
     "sent_at": 1700000000.123, "headers": {}}

``decode`` raises ``MalformedMessage(reason)`` for anything else; adapters
dead-letter such a message with ``err.reason`` and never retry it.

Headers (all optional; other keys pass through untouched):

- fault directives, injected by the harness and applied by ``execute.process`` ONLY in a worker the
  harness started with faults enabled (``QUEUEKIT_FAULTS=1``, see ``worker_env``); elsewhere they are
  ignored (logged once), so no producer can crash, stall or un-guard a production worker:
  ``{"fault": "fail-times", "n": 2}``   raise TransientError on attempts 1..n, then succeed
  ``{"fault": "always-fail"}``          raise PermanentError on every attempt (a poison message)
  ``{"fault": "slow", "seconds": 0.5}`` take that long before handling (a slow worker)
  ``{"fault": "cpu", "rounds": 1300}``  burn CPU first (sha256 rounds; 13k ~ 10 ms) — bench's CPU-bound mode
  ``{"fault": "crash", "at": "after-effect" | "after-output"}`` the worker process dies there, first attempt only
- ``{"idempotency": "off"}``: apply this message's effect even if its key was applied before
  Any directive may add ``"service": "video.thumbnail"`` to apply to that service only.
- ``{"upstream": {...}}``: the previous pipeline step's result, for transports
  that forward it inside the envelope (see ``execute.forward``).

Limits, checked before and while parsing so hostile bytes are malformed, never a crash or a retry:
at most ``MAX_ENVELOPE_BYTES``, JSON nested at most ``MAX_DEPTH`` deep, integers that fit SQLite's
64 bits, finite numbers, strings of at most ``MAX_STRING`` characters, and bounded durations
(``MAX_SLOW_S``, ``MAX_CPU_ROUNDS``, ``MAX_FAIL_TIMES``, a video's ``duration_s`` <= ``MAX_VIDEO_S``).
"""
from __future__ import annotations

import functools
import json
import math
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Annotated, Any, Literal, Union, get_type_hints

import msgspec

from queuekit.core.frozen import frozen
from workloads.messages import MESSAGE_TYPES, Message

ENVELOPE_FIELDS = ("id", "schema", "version", "body", "sent_at", "headers")
FAULTS = ("fail-times", "always-fail", "slow", "crash", "cpu")
CRASH_POINTS = ("after-effect", "after-output")
DIRECTIVES = ("fault", "n", "seconds", "rounds", "at", "idempotency")  # what a worker without faults ignores

MAX_ENVELOPE_BYTES = 256 * 1024  # a real envelope is < 1 KiB; checked before decoding a byte
MAX_DEPTH = 16  # JSON nesting (the envelope itself is 3 deep; upstream results add a few)
MAX_STRING = 1024  # characters in any string field of the envelope or body
INT64 = (-2**63, 2**63 - 1)  # what SQLite stores as INTEGER; a bigger int would fail every attempt
MAX_SLOW_S = 60.0  # fault 'slow': the longest scenario (long-task) asks for 6 s
MAX_CPU_ROUNDS = 1_300_000  # fault 'cpu': ~1 s of hashing
MAX_FAIL_TIMES = 10_000
MAX_VIDEO_S = 600.0  # VideoUploaded.duration_s: ~6 s of transcode CPU at the top
FIELD_RANGES = {("video.uploaded", "duration_s"): (0.0, MAX_VIDEO_S)}


class MalformedMessage(ValueError):
    """The bytes are not a valid envelope; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class Envelope(msgspec.Struct, frozen=True):
    """A message as the kit sends it. A msgspec Struct: a consumer builds one per message, in ~0.1 µs where a
    frozen dataclass takes ~1 µs."""

    id: str  # unique per publish; a redelivery keeps it, a re-publish gets a new one
    schema: str
    version: int
    body: Message
    sent_at: float  # producer wall clock (time.time()), for end-to-end latency
    headers: Mapping[str, Any] = msgspec.field(default_factory=dict)

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
    """Parse and validate an envelope; raise ``MalformedMessage`` saying what is wrong.

    Two paths, one verdict: msgspec's typed decoder (``_decode_typed``) accepts a well-formed envelope
    in one C pass; anything it refuses goes through the hand-written checks (``_decode_checked``), which
    name the reason. The typed path may only accept what the checks accept (tests/unit/test_fast_paths.py).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"not bytes but {type(data).__name__}")
    if len(data) > MAX_ENVELOPE_BYTES:  # before decoding: a 100 MiB frame costs nothing more than this check
        raise MalformedMessage(f"{len(data)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit")
    if type(data) is not bytes:
        data = bytes(data)
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:  # cannot nest deeper than its brackets (every real one)
        env = _decode_typed(data)
        if env is not None:
            return env
    return _decode_checked(data)


def _decode_checked(data: bytes) -> Envelope:
    """The hand-written checks: slower, and they say which field or limit is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("not UTF-8") from None
    if _nesting(text) > MAX_DEPTH:  # before json.loads, whose recursion a deep array would exhaust
        raise MalformedMessage(f"JSON nested deeper than {MAX_DEPTH}")
    try:
        doc = _DECODER.decode(text)
    except (ValueError, RecursionError):  # ValueError includes ints over Python's 4300-digit limit
        raise MalformedMessage("not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedMessage("not a JSON object")
    _check_values(doc)
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


# -- the typed path: msgspec Structs mirroring the envelope and each message type, with the limits as
# constraints, so one C pass both parses and validates. What msgspec cannot say as a constraint is checked
# here after it: the limits on free-form headers, and the fault directives.
_Str = Annotated[str, msgspec.Meta(max_length=MAX_STRING)]  # characters, as MAX_STRING counts them
_Int = Annotated[int, msgspec.Meta(ge=INT64[0], le=INT64[1])]
_FINITE = msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)  # refuses inf (1e999), as the checks do


def _number(bounds: tuple[float, float] | None = None) -> Any:
    """A JSON number for a float field. ``int | float``, not ``float``: msgspec would turn an int literal
    over 64 bits into a float and accept it, where the checks refuse it, so an int stays an int (bounded)
    until ``_decode_typed`` converts it."""
    lo, hi = bounds or (-sys.float_info.max, sys.float_info.max)
    return (Annotated[int, msgspec.Meta(ge=max(INT64[0], math.ceil(lo)), le=min(INT64[1], math.floor(hi)))]
            | Annotated[float, msgspec.Meta(ge=lo, le=hi)])


def _typed_envelope(message_type: Any) -> type:
    """The Struct of an envelope carrying ``message_type``: tagged by ``schema``, unknown fields refused."""
    hints, names = _schema_of(message_type)
    schema = message_type.schema
    kinds = {str: _Str, int: _Int}
    body = msgspec.defstruct(f"{message_type.__name__}Body", [
        (name, _number(FIELD_RANGES.get((schema, name))) if hints[name] is float else kinds[hints[name]])
        for name in names], forbid_unknown_fields=True)
    return msgspec.defstruct(f"{message_type.__name__}Envelope", [
        ("id", _Str), ("version", Literal[message_type.version]), ("body", body), ("sent_at", _number()),
        ("headers", dict[_Str, Any]),
    ], tag_field="schema", tag=schema, forbid_unknown_fields=True)


def _decode_typed(data: bytes) -> Envelope | None:
    """The envelope every well-behaved producer sends, or None: then ``_decode_checked`` says why (so this
    path may only accept, never reject, and must accept nothing the checks would refuse)."""
    try:
        doc = _TYPED.decode(data)
    except msgspec.MsgspecError:  # not JSON, a wrong type, a limit crossed: the checked path names it
        return None
    headers = doc.headers
    if headers and not _within_limits(headers):  # free-form: msgspec's Any has no limits
        return None
    _check_headers(headers)  # the same checks as the checked path: its MalformedMessage stands
    message_type, floats = _MESSAGE_OF[type(doc)]
    fields = msgspec.structs.asdict(doc.body)
    for name in floats:  # an int where a float is declared (3 is a fine duration): a float, as declared
        fields[name] = float(fields[name])
    return Envelope(doc.id, message_type.schema, doc.version, frozen(message_type, **fields), float(doc.sent_at),
                    headers)

@functools.cache
def _schema_of(message_type: type) -> tuple[dict[str, type], list[str]]:
    """A message type's field types and names, worked out once: ``get_type_hints`` costs ~100 µs a call."""
    return get_type_hints(message_type), [f.name for f in fields(message_type)]


def _decode_body(message_type: type, body: dict) -> Message:
    hints, names = _schema_of(message_type)
    _check_names(body, names)
    for name in names:
        _check_type(body, name, hints[name])
        bounds = FIELD_RANGES.get((getattr(message_type, "schema", ""), name))
        if bounds is not None and not bounds[0] <= body[name] <= bounds[1]:
            raise MalformedMessage(f"field {name!r} must be in [{bounds[0]:g}, {bounds[1]:g}]")
    return message_type(**{name: float(body[name]) if hints[name] is float else body[name] for name in names})


def _check_headers(headers: dict) -> None:
    if "upstream" in headers and not isinstance(headers["upstream"], dict):
        raise MalformedMessage("header 'upstream' must be object")
    fault = headers.get("fault")
    if fault is None:
        return
    if fault not in FAULTS:
        raise MalformedMessage(f"unknown fault {fault!r}")
    if fault == "fail-times" and not (_is_type(headers.get("n"), int) and 0 <= headers["n"] <= MAX_FAIL_TIMES):
        raise MalformedMessage(f"fault 'fail-times' needs an int 'n' in [0, {MAX_FAIL_TIMES}]")
    if fault == "slow" and not (_is_type(headers.get("seconds"), float) and 0 <= headers["seconds"] <= MAX_SLOW_S):
        raise MalformedMessage(f"fault 'slow' needs a number 'seconds' in [0, {MAX_SLOW_S:g}]")
    if fault == "cpu" and not (_is_type(headers.get("rounds"), int) and 0 <= headers["rounds"] <= MAX_CPU_ROUNDS):
        raise MalformedMessage(f"fault 'cpu' needs an int 'rounds' in [0, {MAX_CPU_ROUNDS}]")
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


def _nesting(text: str) -> int:
    """How deep ``[``/``{`` nest, outside strings; C-speed scans, no recursion."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the brackets it has (every real envelope)
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _check_values(doc: dict) -> None:
    """Every number finite and within SQLite's INTEGER, every string at most ``MAX_STRING``.

    The walk on every message is path-free (a few µs for an envelope); only a bad value pays for
    :func:`_where_bad` to say where it sits.
    """
    lo, hi = INT64
    stack: list[Any] = [doc]
    while stack:
        item = stack.pop()
        kind = type(item)  # json gives exactly dict/list/str/int/float/bool/None (bool is not int here)
        if kind is dict:
            stack.extend(item.values())
            stack.extend(item)  # keys are strings: the length limit holds for them too
        elif kind is list:
            stack.extend(item)
        elif ((kind is str and len(item) > MAX_STRING) or (kind is int and not lo <= item <= hi)
              or (kind is float and not math.isfinite(item))):
            raise MalformedMessage(_where_bad(doc))


def _within_limits(value: Any) -> bool:
    try:
        _check_values(value)
    except MalformedMessage:
        return False
    return True


def _where_bad(value: Any, where: str = "envelope") -> str:
    """The first bad value's path and what is wrong with it (the slow path of :func:`_check_values`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _where_bad(key, f"{where} key") or _where_bad(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            if found := _where_bad(item, f"{where}[]"):
                return found
    elif isinstance(value, bool) or value is None:
        return ""
    elif isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        return f"{where}: integer outside 64 bits"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where}: number is not finite"
    elif isinstance(value, str) and len(value) > MAX_STRING:
        return f"{where}: string longer than {MAX_STRING} characters"
    return ""


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one, reused: json.loads(..., kw) builds one per call
_MESSAGE_OF = {_typed_envelope(t): (t, tuple(n for n in _schema_of(t)[1] if _schema_of(t)[0][n] is float))
               for t in MESSAGE_TYPES.values()}
_TYPED = msgspec.json.Decoder(Union[tuple(_MESSAGE_OF)])  # noqa: UP007  one decoder, every schema: the tag picks the Struct
