"""The framework-free domain: three workloads, their messages and handlers.

``WORKLOADS`` is the table the harness and the app packages read: per
workload, the message class, the shape of the flow, the service names the
workers run (one queue / consumer group per service), and the generator of
test messages. Nothing here imports a queue framework.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from . import signup, tracking, video
from .messages import MESSAGE_TYPES, Message, SignupRequested, TrackEvent, VideoUploaded

Shape = Literal["work-queue", "pipeline", "fan-out"]  # how a workload's services see its messages

@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    message_type: type[Message]
    shape: Shape  # "work-queue": one service | "pipeline": services in order | "fan-out": each service gets all
    services: tuple[str, ...]  # full service names: queue / consumer-group / ledger names
    make_messages: Callable[..., Sequence]  # (n, seed=0, ...) -> list of message_type


WORKLOADS: dict[str, WorkloadSpec] = {
    "signup": WorkloadSpec(
        name="signup",
        message_type=SignupRequested,
        shape="work-queue",
        services=(signup.SERVICE,),
        make_messages=signup.make_messages,
    ),
    "video": WorkloadSpec(
        name="video",
        message_type=VideoUploaded,
        shape="pipeline",
        services=tuple(f"video.{step}" for step in video.VIDEO_STEPS),
        make_messages=video.make_messages,
    ),
    "tracking": WorkloadSpec(
        name="tracking",
        message_type=TrackEvent,
        shape="fan-out",
        services=tuple(f"tracking.{name}" for name in tracking.TRACKING_SERVICES),
        make_messages=tracking.make_messages,
    ),
}

__all__ = ["MESSAGE_TYPES", "WORKLOADS", "WorkloadSpec", "SignupRequested", "TrackEvent", "VideoUploaded"]
