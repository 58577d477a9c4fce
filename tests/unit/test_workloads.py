"""The framework-free domain: messages, handlers, generators, the WORKLOADS table."""
from __future__ import annotations

import dataclasses
import time

import pytest

from workloads import WORKLOADS, signup, tracking, video
from workloads.messages import MESSAGE_TYPES, SignupRequested, TrackEvent, VideoUploaded


def test_registry_maps_schema_names_to_classes():
    assert MESSAGE_TYPES == {
        "signup.requested": SignupRequested,
        "video.uploaded": VideoUploaded,
        "track.event": TrackEvent,
    }
    assert all(cls.version == 1 for cls in MESSAGE_TYPES.values())


def test_keys():
    assert SignupRequested(5, "a@b", "form-77").idempotency_key == "form-77"
    assert VideoUploaded(video_id=9, user_id=5, duration_s=1.0).idempotency_key == "video-9"
    assert TrackEvent(user_id=5, seq=3, kind="view", ts=0.0).idempotency_key == "5-3"
    for msg in (SignupRequested(5, "a@b", "k"), VideoUploaded(9, 5, 1.0), TrackEvent(5, 3, "view", 0.0)):
        assert msg.partition_key == "5"


def test_messages_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrackEvent(1, 0, "view", 0.0).seq = 2


def test_workloads_table():
    assert set(WORKLOADS) == {"signup", "video", "tracking"}
    assert WORKLOADS["signup"].services == ("signup",)
    assert WORKLOADS["video"].services == ("video.transcode", "video.thumbnail", "video.notify")
    assert WORKLOADS["tracking"].services == ("tracking.analytics", "tracking.recommendations")
    assert video.VIDEO_STEPS == ("transcode", "thumbnail", "notify")
    assert tracking.TRACKING_SERVICES == ("analytics", "recommendations")
    for name, spec in WORKLOADS.items():
        assert spec.name == name
        messages = spec.make_messages(50, seed=1)
        assert len(messages) == 50
        assert all(type(m) is spec.message_type for m in messages)
        assert messages == spec.make_messages(50, seed=1)  # deterministic for a seed
        assert messages != spec.make_messages(50, seed=2)
        assert spec.make_messages(0) == []


def test_signup_keys_are_unique():
    messages = signup.make_messages(200, seed=4)
    assert len({m.idempotency_key for m in messages}) == 200


class FakeOutbox(signup.Outbox):
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def add(self, recipient: str, subject: str) -> None:
        self.sent.append((recipient, subject))


def test_send_welcome_email_writes_the_outbox():
    outbox = FakeOutbox()
    result = signup.send_welcome_email(signup.welcome_email(SignupRequested(3, "u3@example.test", "k")), outbox)
    assert outbox.sent == [("u3@example.test", "Welcome aboard, user 3!")]
    assert result == {"recipient": "u3@example.test", "subject": "Welcome aboard, user 3!"}


def test_video_cpu_work_is_proportional_to_duration():
    short, long = VideoUploaded(1, 1, 1.0), VideoUploaded(1, 1, 2.0)
    assert video.transcode(long)["rounds"] == 2 * video.transcode(short)["rounds"] == 2 * video.ROUNDS_PER_VIDEO_SECOND
    assert video.transcode(short) == video.transcode(short)  # deterministic
    started = time.process_time()
    video.transcode(VideoUploaded(1, 1, 5.0))
    assert time.process_time() - started > 0.005  # real CPU, not a sleep (~50 ms expected)


def test_video_pipeline_passes_results_along():
    msg = VideoUploaded(video_id=4, user_id=2, duration_s=0.1)
    transcoded = video.transcode(msg)
    thumb = video.thumbnail(msg, transcoded)
    assert thumb["rounds"] == round(0.1 * video.ROUNDS_PER_VIDEO_SECOND * video.THUMBNAIL_SHARE)
    assert thumb != video.thumbnail(msg, {**transcoded, "digest": "00" * 32})  # depends on its input
    note = video.notify(msg, thumb)
    assert note["user_id"] == 2 and thumb["thumbnail"] in note["text"]


def test_tracking_sequences_are_per_user_and_interleaved():
    events = tracking.make_messages(300, seed=5, users=6)
    users = {e.user_id for e in events}
    assert users == set(range(1, 7))
    for user_id in users:
        assert [e.seq for e in events if e.user_id == user_id] == list(range(sum(e.user_id == user_id for e in events)))
    assert [e.user_id for e in events] != sorted(e.user_id for e in events)  # interleaved, not grouped
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len({e.idempotency_key for e in events}) == 300


def test_tracking_folds():
    events = [TrackEvent(1, 0, "view", 0.0), TrackEvent(2, 0, "click", 0.0), TrackEvent(1, 1, "view", 0.0)]
    assert tracking.counts_per_kind(tracking.count_kind(e) for e in events) == {"view": 2, "click": 1}
    in_order = [tracking.remember_last_seq(e) for e in events]
    assert tracking.last_seq_per_user(in_order) == {1: 1, 2: 0}
    assert tracking.last_seq_per_user(reversed(in_order)) == {1: 0, 2: 0}  # reordering shows
