"""The wire format: round trips, and every malformed input names its reason."""
from __future__ import annotations

import json
import re

import pytest

from queuekit.core.envelope import Envelope, MalformedMessage, decode, encode, make_envelope
from workloads import WORKLOADS
from workloads.messages import SignupRequested, TrackEvent, VideoUploaded


def valid_doc() -> dict:
    env = make_envelope(TrackEvent(user_id=7, seq=3, kind="view", ts=1.5), id="m-1", sent_at=10.0)
    return json.loads(encode(env))


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_round_trip_every_workload(workload):
    for msg in WORKLOADS[workload].make_messages(20, seed=3):
        env = make_envelope(msg, {"fault": "fail-times", "n": 2})
        back = decode(encode(env))
        assert back == env
        assert back.body == msg and type(back.body) is type(msg)
        assert back.key == msg.idempotency_key


def test_encode_is_plain_json():
    env = make_envelope(SignupRequested(user_id=1, email="a@example.test", idempotency_key="k"), id="x", sent_at=2.0)
    assert json.loads(encode(env).decode("utf-8")) == {
        "id": "x", "schema": "signup.requested", "version": 1,
        "body": {"user_id": 1, "email": "a@example.test", "idempotency_key": "k"},
        "sent_at": 2.0, "headers": {},
    }


def test_make_envelope_gives_fresh_ids_and_takes_schema_from_the_body():
    msg = VideoUploaded(video_id=1, user_id=2, duration_s=1.0)
    first, second = make_envelope(msg), make_envelope(msg)
    assert first.id != second.id
    assert (first.schema, first.version) == ("video.uploaded", 1)


def test_an_int_is_a_fine_float():
    doc = valid_doc()
    doc["body"]["ts"] = 3
    doc["sent_at"] = 11
    env = decode(json.dumps(doc).encode())
    assert env.body.ts == 3.0 and isinstance(env.body.ts, float)
    assert isinstance(env.sent_at, float)


def test_envelope_is_frozen():
    env = Envelope(id="x", schema="track.event", version=1, body=TrackEvent(1, 0, "view", 0.0), sent_at=0.0, headers={})
    with pytest.raises(AttributeError):
        env.id = "y"


def with_change(path: str, value=None, *, delete: bool = False) -> bytes:
    doc = valid_doc()
    *parents, last = path.split(".")
    target = doc
    for name in parents:
        target = target[name]
    if delete:
        del target[last]
    else:
        target[last] = value
    return json.dumps(doc).encode()


MALFORMED = [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b'{"id": NaN}', "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'"a string"', "not a JSON object"),
    (with_change("schema", delete=True), "missing field 'schema'"),
    (with_change("extra", 1), "unexpected field 'extra'"),
    (with_change("id", 5), "field 'id' must be str"),
    (with_change("version", "1"), "field 'version' must be int"),
    (with_change("body", [1]), "field 'body' must be object"),
    (with_change("sent_at", "now"), "field 'sent_at' must be number"),
    (with_change("headers", None), "field 'headers' must be object"),
    (with_change("schema", "foo"), "unknown schema 'foo'"),
    (with_change("version", 2), "unsupported version 2 of 'track.event'"),
    (with_change("body.kind", delete=True), "missing field 'kind'"),
    (with_change("body.age", 30), "unexpected field 'age'"),
    (with_change("body.user_id", "7"), "field 'user_id' must be int"),
    (with_change("body.user_id", True), "field 'user_id' must be int"),
    (with_change("body.seq", 1.5), "field 'seq' must be int"),
    (with_change("body.ts", "late"), "field 'ts' must be number"),
    (with_change("body.kind", None), "field 'kind' must be str"),
    (with_change("headers.fault", "explode"), "unknown fault 'explode'"),
    (with_change("headers.fault", "fail-times"), "fault 'fail-times' needs an int 'n' in [0, 10000]"),
    (with_change("headers", {"fault": "slow", "seconds": -1}), "fault 'slow' needs a number 'seconds' in [0, 60]"),
    (with_change("headers", {"fault": "always-fail", "service": 3}), "header 'service' must be str"),
    (with_change("headers.upstream", [1]), "header 'upstream' must be object"),
]


@pytest.mark.parametrize("data, reason", MALFORMED, ids=[reason for _, reason in MALFORMED])
def test_malformed_input_names_its_reason(data, reason):
    with pytest.raises(MalformedMessage) as caught:
        decode(data)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == reason


def test_video_duration_wrong_type():
    env = make_envelope(VideoUploaded(video_id=1, user_id=1, duration_s=1.0))
    doc = json.loads(encode(env))
    doc["body"]["duration_s"] = "long"
    with pytest.raises(MalformedMessage, match="field 'duration_s' must be number"):
        decode(json.dumps(doc).encode())


def test_unknown_headers_pass_through():
    env = decode(with_change("headers", {"trace": "abc", "fault": "slow", "seconds": 0}))
    assert env.headers == {"trace": "abc", "fault": "slow", "seconds": 0}


def deep(n: int) -> bytes:
    return ("[" * n + "]" * n).encode()


@pytest.mark.parametrize("data, reason", [
    (b"x" * (300 * 1024), "over the 262144-byte limit"),
    (deep(100_000), "nested deeper than 16"),
    (json.dumps({**valid_doc(), "headers": {"x": json.loads(deep(20))}}).encode(), "nested deeper than 16"),
    (json.dumps({**valid_doc(), "body": {**valid_doc()["body"], "seq": 2**70}}).encode(), "outside 64 bits"),
    (json.dumps({**valid_doc(), "sent_at": 1}, separators=(",", ":")).encode()
     .replace(b'"sent_at":1', b'"sent_at":1e999'), "not finite"),
    (b'{"id":' + b"9" * 5000 + b"}", "not JSON"),
    (json.dumps({**valid_doc(), "id": "i" * 5000}).encode(), "longer than 1024"),
    (json.dumps({**valid_doc(), "headers": {"fault": "slow", "seconds": 1e6}}).encode(), "'seconds' in [0, 60]"),
    (json.dumps({**valid_doc(), "headers": {"fault": "cpu", "rounds": 10**9}}).encode(), "'rounds' in [0, 1300000]"),
])
def test_limits_are_malformed_not_crashes(data, reason):
    with pytest.raises(MalformedMessage, match=re.escape(reason)):
        decode(data)


def test_a_video_longer_than_the_bound_is_malformed():
    doc = json.loads(encode(make_envelope(VideoUploaded(video_id=1, user_id=1, duration_s=1.0))))
    doc["body"]["duration_s"] = 1e6
    with pytest.raises(MalformedMessage, match=re.escape("field 'duration_s' must be in [0, 600]")):
        decode(json.dumps(doc).encode())


def test_brackets_inside_strings_do_not_count_as_depth():
    doc = valid_doc()
    doc["body"]["kind"] = "[" * 2000
    with pytest.raises(MalformedMessage, match="longer than"):  # the string bound, not the depth
        decode(json.dumps(doc).encode())
    doc["body"]["kind"] = "[{" * 100
    assert decode(json.dumps(doc).encode()).body.kind == "[{" * 100
