"""The messages the three workloads exchange: frozen dataclasses, one schema each.

Every message class carries, as class attributes, its wire ``schema`` name and
``version``, and offers two properties the harness relies on:

- ``idempotency_key``: equal for two deliveries of the same logical event, so
  the ledger can turn at-least-once delivery into one effect per key;
- ``partition_key``: the ordering key (the user); Kafka producers use it as the
  record key, so all of one user's messages land on one partition.

Fields hold JSON-native values only (int, float, str), so the envelope can
encode them without a custom codec. ``MESSAGE_TYPES`` maps schema -> class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class Message(Protocol):
    """What every workload message offers (structural type, for annotations)."""

    schema: ClassVar[str]
    version: ClassVar[int]
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every message is a dataclass: encode() uses asdict()

    @property
    def user_id(self) -> int: ...  # read-only: the messages are frozen

    @property
    def idempotency_key(self) -> str: ...

    @property
    def partition_key(self) -> str: ...


@dataclass(frozen=True)
class SignupRequested:
    """A user signed up; they should get exactly one welcome email."""

    schema: ClassVar[str] = "signup.requested"
    version: ClassVar[int] = 1

    user_id: int
    email: str
    idempotency_key: str  # chosen by the producer (the sign-up form submission)

    @property
    def partition_key(self) -> str:
        return str(self.user_id)


@dataclass(frozen=True)
class VideoUploaded:
    """A video finished uploading; it goes through transcode -> thumbnail -> notify."""

    schema: ClassVar[str] = "video.uploaded"
    version: ClassVar[int] = 1

    video_id: int
    user_id: int
    duration_s: float

    @property
    def idempotency_key(self) -> str:
        return f"video-{self.video_id}"

    @property
    def partition_key(self) -> str:
        return str(self.user_id)


@dataclass(frozen=True)
class TrackEvent:
    """One user-interaction event; ``seq`` counts up per user from 0, so order is checkable."""

    schema: ClassVar[str] = "track.event"
    version: ClassVar[int] = 1

    user_id: int
    seq: int
    kind: str
    ts: float

    @property
    def idempotency_key(self) -> str:
        return f"{self.user_id}-{self.seq}"

    @property
    def partition_key(self) -> str:
        return str(self.user_id)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.schema: cls for cls in (SignupRequested, VideoUploaded, TrackEvent)
}
