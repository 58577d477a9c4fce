"""The hostile-input corpus, as data: what a careless or malicious producer can put on the wire.

Used by the hostile-input suite (``tests/e2e/test_hostile.py``) and the ``framework-drops``
scenario. ``wire(stack)`` finds the stack's own raw publisher (``<app package>/raw_publisher.py``).

Each ``Hostile`` is one input and where it must end on each stack:

* ``via="envelope"``: the bytes are an envelope (or what should have been one); the suite
  publishes them twice, through the kit (``Stack.publish_raw``) and straight onto the wire
  in the stack's own framing (pika / confluent-kafka / redis-py);
* ``via="celery" | "dramatiq" | "kafka" | "redis_streams" | "rq" | ...``: framework-protocol abuse, a frame built for that
  stack only (``<app package>/raw_publisher.py`` builds it), published on the wire.

``ends``: ``"dead: <reason substring>"`` (in the dead-letter place, with that reason),
``"effect"`` (applied once: the input was fine, its hostile part ignored), ``"refused"``
(the broker or the kit refused it at publish). A dict gives it per broker (``"broker:kafka"``), else
``"default"``. A stack whose framework ends an input elsewhere says so on its class
(``Stack.hostile_outcomes``): no table keyed by stack name lives here. Every input carries
``marker(name)`` in its bytes, so its dead letter (even truncated) is found; a Kafka record the
client cannot decode is found by where it landed (``is_dead_letter_of``).
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import pickle
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from queuekit.core.envelope import encode, make_envelope
from queuekit.stacks.declaration import target
from queuekit.stacks.wires import DROP, frame_spec
from workloads.messages import SignupRequested, VideoUploaded


def marker(name: str) -> str:
    return f"hostile-{name}"


@dataclass(frozen=True)
class Hostile:
    name: str
    cls: str  # encoding | shape | schema | protocol | size | headers | directives | limits
    via: str  # "envelope" or the one stack whose wire the frame is for
    ends: str | Mapping[str, str]
    payload: bytes = b""
    frame: Mapping[str, Any] = field(default_factory=dict)
    copies: int = 1  # publishes per route (the duplicate-directive input sends itself twice)
    effects: tuple[str, ...] = ()  # idempotency keys of good messages travelling with it, each to take effect

    def end_on(self, stack) -> str:
        """Where it must end on ``stack``: the stack class's own declaration (``hostile_outcomes``), else
        the corpus's per broker, else its default."""
        declared = getattr(type(stack), "hostile_outcomes", {}).get(self.name)
        if declared is not None:
            return declared
        if isinstance(self.ends, str):
            return self.ends
        return self.ends.get(f"broker:{stack.capabilities.broker}", self.ends["default"])


def good(name: str, headers: dict | None = None) -> bytes:
    """A valid signup whose id and idempotency key are the input's marker."""
    msg = SignupRequested(user_id=7, email=f"{name}@example.test", idempotency_key=marker(name))
    return encode(make_envelope(msg, headers, id=marker(name), sent_at=1.0))


def doc(name: str, **changes: Any) -> dict:
    """The valid envelope as a dict, with ``changes`` (``body__email=...`` reaches into body)."""
    out = json.loads(good(name))
    for path, value in changes.items():
        target, *rest = path.split("__")
        if rest:
            if value is DROP:
                del out[target][rest[0]]
            else:
                out[target][rest[0]] = value
        elif value is DROP:
            del out[target]
        else:
            out[target] = value
    return out


def js(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def padded(name: str, size: int) -> bytes:
    """An envelope-looking JSON object of ``size`` bytes, marker first."""
    head = f'{{"id":"{marker(name)}","pad":"'.encode()
    return head + b"x" * (size - len(head) - 2) + b'"}'


def deep(name: str, depth: int) -> bytes:
    return f'{{"id":"{marker(name)}","d":'.encode() + b"[" * depth + b"]" * depth + b"}"


def amqp(data: bytes, properties: bytes = b"") -> bytes:
    """An AMQP 1.0 message as a stream stores it: optional raw application-properties bytes, then one data
    section (described type 0x75, vbin32)."""
    return properties + b"\x00\x53\x75\xb0" + len(data).to_bytes(4, "big") + data


def amqp_map(*pairs: bytes) -> bytes:
    """An application-properties section (0x74) holding a map32 of the given encoded keys and values."""
    items = b"".join(pairs)
    return b"\x00\x53\x74\xd1" + (len(items) + 4).to_bytes(4, "big") + len(pairs).to_bytes(4, "big") + items


def gzipped(name: str, data: bytes = b"", zeros: int = 0) -> bytes:
    """gzip of ``data`` then ``zeros`` zero bytes, streamed (a bomb costs its compressed size here); the
    input's marker rides in the gzip header's file name, so even the compressed copy names it."""
    out = io.BytesIO()
    with gzip.GzipFile(filename=marker(name), mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(data)
        block = bytes(1024 * 1024)
        for done in range(0, zeros, len(block)):
            gz.write(block[:min(len(block), zeros - done)])
    return out.getvalue()


def zlib_bomb(head: bytes, spaces: int) -> bytes:
    """zlib of ``head`` then ``spaces`` blanks (JSON allows trailing whitespace), its first block STORED so
    ``head`` (and the marker in it) can be read in the compressed bytes; streamed, so a bomb costs little."""
    stored = b"\x00" + len(head).to_bytes(2, "little") + (len(head) ^ 0xFFFF).to_bytes(2, "little") + head
    deflater, blank, check = zlib.compressobj(9, zlib.DEFLATED, -15), b" " * (1024 * 1024), zlib.adler32(head)
    rest = []
    for done in range(0, spaces, len(blank)):
        chunk = blank[:min(len(blank), spaces - done)]
        rest.append(deflater.compress(chunk))
        check = zlib.adler32(chunk, check)
    return b"\x78\x9c" + stored + b"".join(rest) + deflater.flush() + check.to_bytes(4, "big")


def task_body(name: str, embed: dict | None = None) -> bytes:
    """A Celery protocol 2 body for ``signup`` carrying ``good(name)``."""
    empty = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return js([[good(name).decode()], {}, {**empty, **(embed or {})}])


def signature(task: str, *args: Any, immutable: bool = True, **fields: Any) -> dict:
    """A Celery signature as it travels in a canvas (``Signature.__json__``)."""
    return {"task": task, "args": list(args), "kwargs": {}, "options": {}, "subtask_type": None,
            "immutable": immutable, **fields}


def kombu_record(name: str, **changes: Any) -> bytes:
    """A kombu virtual-transport record of a valid signup task, with ``changes`` (``properties__x`` reaches in)."""
    body = task_body(name)
    record: dict[str, Any] = {
        "body": base64.b64encode(body).decode(), "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": "signup", "id": marker(name), "retries": 0, "root_id": marker(name)},
        "properties": {"correlation_id": marker(name), "reply_to": "", "delivery_mode": 2, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": marker(name),
                       "delivery_info": {"exchange": "", "routing_key": "celery.signup"}}}
    for path, value in changes.items():
        target, *rest = path.split("__")
        if rest:
            record[target][rest[0]] = value
        else:
            record[target] = value
    return js(record)


def dramatiq_message(actor: str, *args: Any, **options: Any) -> dict:
    """A Dramatiq message dict for ``actor`` (queues are named ``dramatiq.<actor>``), as a pipe target."""
    return {"queue_name": f"dramatiq.{actor}", "actor_name": actor, "args": list(args),
            "kwargs": {}, "options": options, "message_id": "m-" + actor, "message_timestamp": 1}


def records(*bodies: bytes) -> bytes:
    """The inside of a stream sub-entry batch: each record as a 4-byte size, then its bytes."""
    return b"".join(len(b).to_bytes(4, "big") + b for b in bodies)


class _Touch:
    """Unpickling this creates the file at ``path``: the proof a pickle was loaded (it never must be)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


UNPICKLED_PROOF = "/tmp/queuekit-hostile-rq-pickle-was-unpickled"  # exists only if a worker unpickled the input


def touching_pickle(name: str, path: str = UNPICKLED_PROOF) -> bytes:
    """A pickled job call ``(marker, open(path, "w"))``: harmless unless someone unpickles it."""
    return pickle.dumps((marker(name), _Touch(path)))


def rq_call(name: str, function: str = "rq_app.jobs.signup", instance: Any = None, arg: Any = None,
            **kwargs: Any) -> dict:
    """An RQ job call ``[function, instance, args, kwargs]`` carrying ``good(name)`` (or ``arg``)."""
    return {"call": [function, instance, [good(name).decode() if arg is None else arg], kwargs]}


# A transient failure (only in a worker with the harness's faults on: the framework-drops scenario) makes
# Dramatiq's Retries middleware read the retry options; without faults the message simply takes effect.
FAIL_ONCE = {"fault": "fail-times", "n": 1}
VIDEO = json.loads(encode(make_envelope(VideoUploaded(video_id=1, user_id=7, duration_s=1.0))))

CORPUS: list[Hostile] = [
    # -- broken encodings and JSON ---------------------------------------------------------
    Hostile("not-utf8", "encoding", "envelope", "dead: not UTF-8", marker("not-utf8").encode() + b"\xff\xfe\x80"),
    Hostile("not-json", "encoding", "envelope", "dead: not JSON", marker("not-json").encode() + b" {"),
    Hostile("json-array", "shape", "envelope", "dead: not a JSON object", js([marker("json-array")])),
    Hostile("nan", "encoding", "envelope", "dead: not JSON",
            js(doc("nan")).replace(b'"sent_at":1.0', b'"sent_at":NaN')),
    Hostile("lone-surrogate", "encoding", "envelope", "dead: not UTF-8",
            marker("lone-surrogate").encode() + "\udcff".encode("utf-8", "surrogatepass")),
    # -- wrong types and shapes, unknown schemas ---------------------------------------------
    Hostile("unknown-schema", "schema", "envelope", "dead: unknown schema", js(doc("unknown-schema", schema="evil.x"))),
    Hostile("wrong-version", "schema", "envelope", "dead: unsupported version", js(doc("wrong-version", version=9))),
    Hostile("string-user-id", "shape", "envelope", "dead: field 'user_id' must be int",
            js(doc("string-user-id", body__user_id="7"))),
    Hostile("bool-user-id", "shape", "envelope", "dead: field 'user_id' must be int",
            js(doc("bool-user-id", body__user_id=True))),
    Hostile("missing-field", "shape", "envelope", "dead: missing field 'email'",
            js(doc("missing-field", body__email=DROP))),
    Hostile("extra-field", "shape", "envelope", "dead: unexpected field 'admin'",
            js(doc("extra-field", admin=True))),
    Hostile("other-workload", "schema", "envelope", "dead: is not handled by 'signup'",
            js({**VIDEO, "id": marker("other-workload")})),
    Hostile("upstream-not-object", "shape", "envelope", "dead: header 'upstream' must be object",
            js(doc("upstream-not-object", headers={"upstream": [1]}))),
    # -- size and depth extremes ------------------------------------------------------------
    Hostile("int-over-64-bits", "size", "envelope", "dead: outside 64 bits",
            js(doc("int-over-64-bits", body__user_id=2**70))),
    Hostile("float-overflow", "size", "envelope", "dead: not finite",
            js(doc("float-overflow")).replace(b'"sent_at":1.0', b'"sent_at":1e999')),
    Hostile("5000-digit-int", "size", "envelope", "dead: not JSON",
            f'{{"id":"{marker("5000-digit-int")}","n":{"9" * 5000}}}'.encode()),
    Hostile("nested-100k", "size", "envelope", "dead: nested deeper than 16", deep("nested-100k", 100_000)),
    Hostile("nested-headers", "size", "envelope", "dead: nested deeper than 16",
            js(doc("nested-headers", headers={"x": json.loads("[" * 20 + "]" * 20)}))),
    Hostile("long-string", "size", "envelope", "dead: longer than 1024",
            js(doc("long-string", body__email="e" * 5000))),
    Hostile("300-kib", "size", "envelope", "dead: over the 262144-byte limit", padded("300-kib", 300 * 1024)),
    # a Kafka record just under the producer's 1,000,000-byte limit: its dead letter is written truncated
    # (celery_kafka: kombu base64-encodes the task message into its record, 1.3 MB: the producer refuses it)
    Hostile("near-1-mb", "limits", "envelope", "dead: over the 262144-byte limit", padded("near-1-mb", 990_000)),
    # over Kafka's 1 MiB record limit: the broker refuses it at publish (the frameworks' own frame limits
    # on RabbitMQ are declared by their stacks)
    Hostile("2-mib", "limits", "envelope", {"broker:kafka": "refused", "default": "dead: over the"},
            padded("2-mib", 2 * 1024 * 1024)),
    # -- the harness's directives from a stranger (workers run without QUEUEKIT_FAULTS here) --------
    Hostile("fault-crash", "directives", "envelope", "effect", good("fault-crash", {"fault": "crash", "at": "after-effect"})),
    Hostile("fault-always-fail", "directives", "envelope", "effect", good("fault-always-fail", {"fault": "always-fail"})),
    Hostile("fault-slow-30s", "directives", "envelope", "effect", good("fault-slow-30s", {"fault": "slow", "seconds": 30})),
    Hostile("fault-slow-1e6", "directives", "envelope", "dead: 'seconds' in [0, 60]",
            good("fault-slow-1e6", {"fault": "slow", "seconds": 1e6})),
    Hostile("fault-unknown", "directives", "envelope", "dead: unknown fault", good("fault-unknown", {"fault": "explode"})),
    Hostile("guard-off-twice", "directives", "envelope", "effect", good("guard-off-twice", {"idempotency": "off"}),
            copies=2),

    # -- Celery protocol abuse (frames on celery.signup) ---------------------------------------
    Hostile("celery-unknown-task", "protocol", "celery", "dead: unknown task 'evil.task'",
            good("celery-unknown-task"), {"headers": {"task": "evil.task"}}),
    Hostile("celery-builtin-task", "protocol", "celery", "dead: unknown task 'celery.chord_unlock'",
            good("celery-builtin-task"), {"headers": {"task": "celery.chord_unlock"}}),
    Hostile("celery-args-empty", "protocol", "celery", "dead: arguments do not fit", good("celery-args-empty"),
            {"args": [], "embed": {"m": marker("celery-args-empty")}}),
    Hostile("celery-two-args", "protocol", "celery", "dead: arguments do not fit", good("celery-two-args"),
            {"args": ["extra", marker("celery-two-args")]}),
    Hostile("celery-unknown-kwarg", "protocol", "celery", "dead: arguments do not fit",
            good("celery-unknown-kwarg"), {"kwargs": {"admin": True}}),
    Hostile("celery-arg-is-list", "protocol", "celery", "dead: task argument is list",
            good("celery-arg-is-list"), {"args": [[marker("celery-arg-is-list"), 42]]}),
    Hostile("celery-expired", "protocol", "celery", "dead: expired at", good("celery-expired"),
            {"headers": {"expires": "2001-01-01T00:00:00+00:00"}}),
    Hostile("celery-eta-next-year", "protocol", "celery", "dead: is more than", good("celery-eta-next-year"),
            {"headers": {"eta": "2099-01-01T00:00:00+00:00"}}),
    Hostile("celery-eta-garbage", "protocol", "celery", "dead: not an ISO 8601 time", good("celery-eta-garbage"),
            {"headers": {"eta": "tomorrow"}}),
    Hostile("celery-retries-string", "protocol", "celery", "dead: header 'retries' is str",
            good("celery-retries-string"), {"headers": {"retries": "3"}}),
    Hostile("celery-spoofed-retries", "headers", "celery", "effect", good("celery-spoofed-retries"),
            {"headers": {"retries": 999}}),
    Hostile("celery-body-not-triple", "protocol", "celery", "dead: is not [args, kwargs, embed]",
            good("celery-body-not-triple"), {"body": js({"args": [marker("celery-body-not-triple")]})}),
    Hostile("celery-no-task-header", "protocol", "celery", "dead: no 'task' header", good("celery-no-task-header"),
            {"headers": {"task": DROP}}),
    Hostile("celery-pickle", "protocol", "celery", "dead: refused (JSON only)", good("celery-pickle"),
            {"content_type": "application/x-python-serialize",
             "body": marker("celery-pickle").encode() + pickle.dumps({"harmless": 1})}),  # never unpickled
    # (celery_kafka has no remote control, so nothing to revoke with: its stack declares the input refused)
    Hostile("celery-revoked", "protocol", "celery", "dead: revoked", good("celery-revoked"), {"revoke": True}),
    # -- Celery canvas from a stranger: what stock Celery runs after (or instead of) the task ----------------
    Hostile("celery-callback-second-signup", "canvas", "celery", "dead: canvas 'callbacks'",
            good("celery-callback-second-signup"),
            {"embed": {"callbacks": [signature("signup", good("celery-callback-second-signup-2").decode())]}}),
    Hostile("celery-errback-on-bad-input", "canvas", "celery", "dead: canvas 'errbacks'",
            marker("celery-errback-on-bad-input").encode() + b" {",
            {"embed": {"errbacks": [signature("signup", good("celery-errback-on-bad-input-2").decode())]}}),
    Hostile("celery-chain-to-other-service", "canvas", "celery", "dead: is not the pipeline's next steps",
            good("celery-chain-to-other-service"),
            {"embed": {"chain": [signature("tracking.event", good("celery-chain-to-other-service-2").decode())]}}),
    Hostile("celery-chain-wrong-arity", "canvas", "celery", "dead: is not the pipeline's next steps",
            good("celery-chain-wrong-arity"), {"embed": {"chain": [signature("signup", immutable=False)]}}),
    Hostile("celery-chain-a-string", "canvas", "celery", "dead: canvas 'chain' is str",
            good("celery-chain-a-string"), {"embed": {"chain": "signup"}}),
    Hostile("celery-chord-without-backend", "canvas", "celery", "dead: canvas 'chord'", good("celery-chord-without-backend"),
            {"embed": {"chord": signature("signup", good("celery-chord-without-backend-2").decode())}}),
    Hostile("celery-embed-extra", "canvas", "celery", "dead: canvas: unknown field 'link'",
            good("celery-embed-extra"), {"embed": {"link": [signature("signup")]}}),

    # -- kombu's compression header: inflated by kombu as it reads the frame ---------------------------------
    Hostile("celery-zlib-bomb", "size", "celery", "dead: InflateRefused: zlib body inflates past 1048576 bytes",
            good("celery-zlib-bomb"), {"headers": {"compression": "application/x-gzip"},
                                       "body": zlib_bomb(task_body("celery-zlib-bomb"), 4 << 20)}),
    Hostile("celery-zlib-garbage", "size", "celery", "dead: InflateRefused: zlib body does not inflate",
            good("celery-zlib-garbage"), {"headers": {"compression": "zlib"},
                                          "body": marker("celery-zlib-garbage").encode() + b" not zlib"}),
    Hostile("celery-unknown-compression", "size", "celery", "dead: KeyError: 'application/x-snappy'",
            good("celery-unknown-compression"), {"headers": {"compression": "application/x-snappy"},
                                                 "body": marker("celery-unknown-compression").encode()}),

    # last: stock Celery dies on these two (the scenario framework-drops runs the corpus in this order)
    Hostile("celery-task-is-array", "protocol", "celery", "dead: header 'task' is list",
            good("celery-task-is-array"), {"headers": {"task": ["signup"]}}),
    Hostile("celery-no-id", "protocol", "celery", "dead: header 'id' is missing", good("celery-no-id"),
            {"headers": {"id": DROP}}),
    # -- Kafka records on a celery_kafka topic that are not kombu's JSON (stock kombu dies on each, every worker)
    Hostile("celery-kafka-record-not-json", "protocol", "celery_kafka", "dead: not a kombu record: JSONDecodeError",
            frame={"record": marker("celery-kafka-record-not-json").encode() + b" {"}),
    Hostile("celery-kafka-record-array", "protocol", "celery_kafka", "dead: not a kombu record: a JSON list",
            frame={"record": js([marker("celery-kafka-record-array")])}),
    Hostile("celery-kafka-record-no-properties", "protocol", "celery_kafka", "dead: no properties.delivery_tag",
            frame={"record": js({"body": marker("celery-kafka-record-no-properties")})}),

    # -- list items on a celery_redis queue that are not kombu's JSON (stock kombu: the worker exits, the item is gone)
    Hostile("celery-redis-item-not-json", "protocol", "celery_redis", "dead: not a kombu record: JSONDecodeError",
            frame={"item": marker("celery-redis-item-not-json").encode() + b" {"}),
    Hostile("celery-redis-item-array", "protocol", "celery_redis", "dead: not a kombu record: a JSON list",
            frame={"item": js([marker("celery-redis-item-array")])}),
    Hostile("celery-redis-item-no-properties", "protocol", "celery_redis", "dead: no properties.delivery_tag",
            frame={"item": js({"body": marker("celery-redis-item-no-properties")})}),
    Hostile("celery-redis-body-not-base64", "protocol", "celery_redis", "dead: the body does not decode",
            frame={"item": kombu_record("celery-redis-body-not-base64", body="abc")}),

    # -- Dramatiq protocol abuse (frames on dramatiq.signup) ------------------------------------
    Hostile("dramatiq-retries-string", "protocol", "dramatiq", "dead: option 'retries' is str",
            good("dramatiq-retries-string", FAIL_ONCE), {"fields": {"options": {"retries": "2"}}}),
    Hostile("dramatiq-max-retries", "protocol", "dramatiq", "dead: option 'max_retries' is not the producer's",
            good("dramatiq-max-retries", FAIL_ONCE), {"fields": {"options": {"max_retries": "many"}}}),
    Hostile("dramatiq-unknown-actor", "protocol", "dramatiq", "dead: unknown actor 'evil'",
            good("dramatiq-unknown-actor"), {"fields": {"actor_name": "evil"}}),
    Hostile("dramatiq-foreign-actor", "protocol", "dramatiq", "dead: does not belong on queue",
            good("dramatiq-foreign-actor"), {"fields": {"actor_name": "video.transcode"}}),
    Hostile("dramatiq-no-args", "protocol", "dramatiq", "dead: arguments do not fit",
            good("dramatiq-no-args"), {"fields": {"args": [], "kwargs": {"m": marker("dramatiq-no-args")}}}),
    Hostile("dramatiq-args-dict", "protocol", "dramatiq", "dead: field 'args' is dict",
            good("dramatiq-args-dict"), {"fields": {"args": {"m": marker("dramatiq-args-dict")}}}),
    Hostile("dramatiq-arg-is-list", "protocol", "dramatiq", "dead: actor argument is list",
            good("dramatiq-arg-is-list"), {"fields": {"args": [[marker("dramatiq-arg-is-list")]]}}),
    Hostile("dramatiq-eta-next-year", "protocol", "dramatiq", "dead: option 'eta' is more than",
            good("dramatiq-eta-next-year"), {"fields": {"options": {"eta": 4_000_000_000_000}}}),
    Hostile("dramatiq-bad-pipe-target", "protocol", "dramatiq", "dead: pipe_target",
            good("dramatiq-bad-pipe-target"), {"fields": {"options": {"pipe_target": {"actor_name": "x"}}}}),
    Hostile("dramatiq-not-a-message", "protocol", "dramatiq", "dead: unknown field 'm'",
            good("dramatiq-not-a-message"), {"body": js({"m": marker("dramatiq-not-a-message")})}),
    Hostile("dramatiq-pickle", "protocol", "dramatiq", "dead: not UTF-8 JSON", good("dramatiq-pickle"),
            {"body": marker("dramatiq-pickle").encode() + pickle.dumps({"harmless": 1})}),  # never unpickled
    Hostile("dramatiq-spoofed-retries", "headers", "dramatiq", "effect", good("dramatiq-spoofed-retries"),
            {"fields": {"options": {"retries": 999}}}),
    # -- Dramatiq pipelines and callbacks from a stranger --------------------------------------------------------
    Hostile("dramatiq-pipe-second-signup", "canvas", "dramatiq", "dead: pipe_target on 'signup'",
            good("dramatiq-pipe-second-signup"), {"fields": {"options": {"pipe_target": dramatiq_message(
                "signup", good("dramatiq-pipe-second-signup-2").decode(), pipe_ignore=False)}}}),
    Hostile("dramatiq-pipe-ignore", "canvas", "dramatiq", "dead: option 'pipe_ignore'",
            good("dramatiq-pipe-ignore"), {"fields": {"options": {"pipe_ignore": True, "pipe_target": dramatiq_message(
                "signup", good("dramatiq-pipe-ignore-2").decode())}}}),
    Hostile("dramatiq-on-success", "canvas", "dramatiq", "dead: option 'on_success' is not the producer's",
            good("dramatiq-on-success"), {"fields": {"options": {"on_success": "signup"}}}),
    Hostile("dramatiq-on-failure", "canvas", "dramatiq", "dead: option 'on_failure' is not the producer's",
            marker("dramatiq-on-failure").encode() + b" {", {"fields": {"options": {"on_failure": "signup"}}}),

    # last: each kills a stock Dramatiq worker thread
    Hostile("dramatiq-throws", "protocol", "dramatiq", "dead: option 'throws' is not the producer's",
            good("dramatiq-throws", FAIL_ONCE), {"fields": {"options": {"throws": ["Exception"]}}}),
    Hostile("dramatiq-options-list", "protocol", "dramatiq", "dead: field 'options' is list",
            good("dramatiq-options-list"), {"fields": {"options": ["retries"]}}),

    # -- Kafka records: headers, keys, topics (on qk.signup unless said) ---------------------------
    Hostile("kafka-attempts-not-a-number", "headers", "kafka", "effect", good("kafka-attempts-not-a-number"),
            {"headers": [("attempts", b"abc")]}),
    Hostile("kafka-attempts-on-bad-record", "headers", "kafka", "dead: not JSON",
            marker("kafka-attempts-on-bad-record").encode() + b" {", {"headers": [("attempts", b"\xff")]}),
    Hostile("kafka-header-flood", "headers", "kafka", "effect", good("kafka-header-flood"),
            {"headers": [(f"h{i}", b"v") for i in range(10_000)]}),
    Hostile("kafka-binary-headers", "headers", "kafka", "effect", good("kafka-binary-headers"),
            {"headers": [("attempts", b"\xff\xfe"), ("original-topic", b"\x00" * 100), ("reason", None)]}),
    Hostile("kafka-key-100k", "limits", "kafka", "dead: key of 102400 bytes", good("kafka-key-100k"),
            {"key": b"k" * 100 * 1024}),
    Hostile("kafka-retry-topic-future", "headers", "kafka", "effect", good("kafka-retry-topic-future"),
            {"topic": "retry", "headers": [("attempts", b"1"), ("not-before-ms", b"99999999999999")]}),
    Hostile("kafka-retry-topic-garbage", "headers", "kafka", "dead: not JSON",
            marker("kafka-retry-topic-garbage").encode() + b" {",
            {"topic": "retry", "headers": [("attempts", b"999"), ("not-before-ms", b"soon")]}),
    # past the kit's producer limit (1,000,000 bytes), under the broker's (1 MiB): its dead-letter copy
    # would be too big for the worker's producer and (before truncation) killed every worker in turn
    Hostile("kafka-just-under-broker-limit", "limits", "kafka", "dead: over the 262144-byte limit",
            padded("kafka-just-under-broker-limit", 1_040_000)),
    Hostile("kafka-over-broker-limit", "limits", "kafka", "refused", padded("kafka-over-broker-limit", 1_100_000)),

    # -- kombu records on a celery_kafka topic whose fields kombu reads with the wrong types ------------------
    Hostile("celery-kafka-tag-is-list", "protocol", "celery_kafka", "dead: properties.delivery_tag is list",
            frame={"record": kombu_record("celery-kafka-tag-is-list", properties__delivery_tag=[1])}),
    Hostile("celery-kafka-headers-list", "protocol", "celery_kafka", "dead: headers is list",
            frame={"record": kombu_record("celery-kafka-headers-list", headers=[marker("celery-kafka-headers-list")])}),
    Hostile("celery-kafka-body-encoding-rot13", "protocol", "celery_kafka", "dead: body encoding 'rot13'",
            frame={"record": kombu_record("celery-kafka-body-encoding-rot13", properties__body_encoding="rot13")}),
    Hostile("celery-kafka-body-not-base64", "protocol", "celery_kafka", "dead: the body does not decode",
            frame={"record": kombu_record("celery-kafka-body-not-base64", body="abc")}),
    Hostile("celery-kafka-content-type-number", "protocol", "celery_kafka", "dead: content-type is int",
            frame={"record": kombu_record("celery-kafka-content-type-number", **{"content-type": 7})}),
    # a zstd record inflating past the client's bound: no bytes reach the consumer, only its coordinates
    Hostile("celery-kafka-zstd-bomb", "size", "celery_kafka", "dead: undecodable record",
            frame={"record": marker("celery-kafka-zstd-bomb").encode(), "compress": {"type": "zstd", "zeros": 16 << 20}}),

    # -- Kafka records the client cannot inflate within its bound (zstd past FETCH_MAX_BYTES) ----------------------
    Hostile("kafka-zstd-bomb", "size", "kafka", "dead: undecodable record",
            marker("kafka-zstd-bomb").encode(), {"compress": {"type": "zstd", "zeros": 16 << 20}}),
    Hostile("kafka-zstd-honest", "size", "kafka", "effect", good("kafka-zstd-honest"), {"compress": {"type": "zstd"}}),
    # gzip (also lz4, snappy): librdkafka inflates the whole batch whatever receive.message.max.bytes says
    # (observed); the envelope's size limit then dead-letters it, truncated: one place, after a peak
    Hostile("kafka-gzip-bomb", "size", "kafka", "dead: over the 262144-byte limit",
            marker("kafka-gzip-bomb").encode(), {"compress": {"type": "gzip", "zeros": 16 << 20}}),
    Hostile("share-zstd-bomb", "size", "kafka_share", "dead: undecodable record",
            marker("share-zstd-bomb").encode(), {"compress": {"type": "zstd", "zeros": 16 << 20}}),

    # -- nothing at all: no room for a marker, so its dead letter is found as an empty payload -----------
    Hostile("empty-body", "encoding", "envelope", "dead: not JSON", b""),

    # -- Redis stream entries that are not the redis_streams stack's one-field entry (XADD takes any field/value
    # pairs, a name twice included): none may kill a consumer or stall the group ----------------------------------
    Hostile("streams-no-envelope-field", "protocol", "redis_streams", "dead: no 'envelope' field",
            frame={"fields": [(b"m", marker("streams-no-envelope-field").encode()),
                              (b"body", good("streams-no-envelope-field"))]}),
    Hostile("streams-binary-field-name", "protocol", "redis_streams", "effect",
            frame={"fields": [(b"\xff\xfe\x00", b"\x80\x81"), (b"envelope", good("streams-binary-field-name"))]}),
    # redis-py reads an entry's pairs into a dict: a field given twice reads as its last value (the first ignored)
    Hostile("streams-envelope-twice", "protocol", "redis_streams", "effect",
            frame={"fields": [(b"envelope", marker("streams-envelope-twice").encode() + b" {"),
                              (b"envelope", good("streams-envelope-twice"))]}),
    Hostile("streams-many-fields", "size", "redis_streams", "dead: fields, over 16",
            frame={"fields": [(b"envelope", good("streams-many-fields"))]
                   + [(f"f{i}".encode(), b"x") for i in range(10_000)]}),
    Hostile("streams-huge-field", "size", "redis_streams", "dead: over the 1048576-byte limit",
            frame={"fields": [(b"envelope", good("streams-huge-field")), (b"pad", bytes(2 << 20))]}),

    # -- RabbitMQ stream entries rstream cannot decode, written on the stream protocol (stock rstream drops
    # each with the rest of its chunk, and the reader's offset moves past them) ------------------------------
    Hostile("stream-not-amqp", "protocol", "rabbitmq_stream", "dead: not an AMQP 1.0 message",
            frame={"entries": [marker("stream-not-amqp").encode() + b"\x00\x01 plain bytes"]}),
    Hostile("stream-list-as-map-key", "protocol", "rabbitmq_stream", "dead: unhashable type",
            frame={"entries": [amqp(good("stream-list-as-map-key"), amqp_map(b"\x45", b"\xa1\x01x"))]}),
    # a bad entry first, a good one behind it in the same chunk: one dead letter and one effect
    Hostile("stream-chunk-mates", "protocol", "rabbitmq_stream", "dead: unhashable type",
            frame={"entries": [amqp(good("stream-chunk-mates"), amqp_map(b"\xc1\x01\x00", b"\x40")),
                               amqp(good("stream-chunk-mates-good"))]},
            effects=(marker("stream-chunk-mates-good"),)),
    # sub-entry batches: an honest gzip batch of two, a bomb that declares its size, one that lies about it,
    # and a compression type nobody inflates here
    Hostile("stream-gzip-batch", "protocol", "rabbitmq_stream", "effect",
            frame={"sub_batch": {"data": gzipped("stream-gzip-batch", records(
                amqp(good("stream-gzip-batch")), amqp(good("stream-gzip-batch-2")))), "count": 2,
                "declared": len(records(amqp(good("stream-gzip-batch")), amqp(good("stream-gzip-batch-2"))))}},
            effects=(marker("stream-gzip-batch-2"),)),
    Hostile("stream-bomb-declared", "size", "rabbitmq_stream", "dead: over the",
            frame={"sub_batch": {"data": gzipped("stream-bomb-declared", zeros=2 << 20), "count": 1,
                                 "declared": 2 << 20}}),
    Hostile("stream-bomb-understated", "size", "rabbitmq_stream", "dead: inflates past the 2000 bytes",
            frame={"sub_batch": {"data": gzipped("stream-bomb-understated", zeros=2 << 20), "count": 1,
                                 "declared": 2000}}),
    Hostile("stream-zstd-batch", "protocol", "rabbitmq_stream", "dead: compression type 4",
            frame={"sub_batch": {"data": marker("stream-zstd-batch").encode() + b"\x28\xb5\x2f\xfd", "count": 1,
                                 "declared": 64, "kind": 4}}),

    # -- RQ job hashes written straight into RQ's database (rq:job:<id> + its id on rq:queue:signup) ----------
    # RQ imports whatever function and callbacks a hash names, and its default serializer is pickle: the kit's
    # KitJob (rq_app/jobs.py) runs only its own functions, decodes JSON only, and fails anything else
    Hostile("rq-pickle", "protocol", "rq", "dead: job data is not JSON (the kit never unpickles)",
            frame={"data": touching_pickle("rq-pickle")}),
    Hostile("rq-foreign-function", "protocol", "rq", "dead: not a kit job: function 'os.system'",
            frame=rq_call("rq-foreign-function", "os.system", arg=f"touch {UNPICKLED_PROOF}-os-system "
                          f"# {marker('rq-foreign-function')}")),
    Hostile("rq-instance", "protocol", "rq", "dead: not a kit job", frame=rq_call("rq-instance", instance={"x": 1})),
    Hostile("rq-unknown-kwarg", "protocol", "rq", "dead: unexpected keyword argument 'admin'",
            frame=rq_call("rq-unknown-kwarg", admin=True)),
    Hostile("rq-arg-is-list", "protocol", "rq", "dead: job argument is list",
            frame=rq_call("rq-arg-is-list", arg=[marker("rq-arg-is-list")])),
    Hostile("rq-failure-callback", "canvas", "rq", "dead: failure callback 'os.system'",
            frame={**rq_call("rq-failure-callback"), "fields": {"failure_callback_name": "os.system"}}),
    Hostile("rq-success-callback", "canvas", "rq", "dead: success callback 'subprocess.getoutput'",
            frame={**rq_call("rq-success-callback"), "fields": {"success_callback_name": "subprocess.getoutput"}}),
    Hostile("rq-webhook", "canvas", "rq", "dead: webhooks",
            frame={**rq_call("rq-webhook"), "fields": {"webhooks": json.dumps(
                [{"url": "http://127.0.0.1:9/hook", "job_status": "failed"}])}}),
    # each of these makes a stock RQ worker quit ("found an unhandled exception, quitting...")
    Hostile("rq-timeout-garbage", "protocol", "rq", "dead: unreadable job hash",
            frame={**rq_call("rq-timeout-garbage"), "fields": {"timeout": "forever"}}),
    Hostile("rq-retries-garbage", "protocol", "rq", "dead: unreadable job hash",
            frame={**rq_call("rq-retries-garbage"), "fields": {"retries_left": "many"}}),
]


def is_dead_letter_of(dead, item: Hostile, landed: Collection[str] = ()) -> bool:
    """Is dead letter ``dead`` one of ``item``'s? By its marker in the bytes (``hostile-x`` never matches
    ``hostile-x-y``); a Kafka record the client could not decode has no bytes, only where it ``landed``
    ("topic[partition]@offset", from the wire) in its reason; an empty input's dead letter is the empty one."""
    payload = dead.payload or b""
    if not payload and any(f"{spot}:" in dead.reason for spot in landed):
        return True
    if not item.payload and not item.frame:
        return not payload and "undecodable record" not in dead.reason
    needle = marker(item.name).encode()
    at = payload.find(needle)
    while at >= 0:
        after = payload[at + len(needle):at + len(needle) + 1]
        if not after or not (after.isalnum() or after == b"-"):
            return True
        at = payload.find(needle, at + 1)
    return False


def wire(stack):
    """The stack's raw publisher, as its Stack class declares it (``raw_publisher = "module:Class"``): it sends
    a frame in the stack's own framing, or the bytes as they are."""
    return target(type(stack).raw_publisher)(stack)


def protocol(stack) -> str:
    """The framework protocol a stack speaks: the name of the first registered stack class it derives
    from (``celery_quorum`` and ``celery_kafka`` speak ``celery``, ``dramatiq_quorum`` ``dramatiq``)."""
    names = [cls.__dict__["name"] for cls in type(stack).__mro__ if isinstance(cls.__dict__.get("name"), str)]
    return names[-1] if names else stack.name


__all__ = ["CORPUS", "DROP", "Hostile", "frame_spec", "is_dead_letter_of", "marker", "protocol", "wire"]
