"""``LogStack``: the Stack protocol for stacks on a log (consumer groups over topics or streams).

What every log stack does the same way lives here once: publishing to the
workload's entry topic, lag per group as the broker counts it, ``backlog`` as
its sum, ``drain`` as "every group's lag is 0", readiness as "every group has
exactly the live workers' members", ``in_flight`` empty (pull-based: nothing
is pushed ahead of a poll), dead letters read from each service's dead-letter
topic without consuming it. The worker side (one thread per group member,
signals, the orphan watch) is ``queuekit.core.log_worker``.

A subclass gives three collaborators in its ``__init__`` and says how a
dead-letter record reads:

- ``topology``: the app's topology module (``Route``, ``routes``, ``entry_topic``,
  ``subscriptions``; a route has ``service``, ``source``, ``group``, ``dlq_topic``);
- ``admin``: the broker's view (``lag``, ``groups_ready``, ``describe_groups``);
- ``publisher``: ``publish(topic, envelopes)`` / ``publish_raw(topic, payload)`` / ``close()``;
- ``read_log(topic)``: every record of a topic, read without consuming it;
- ``dead_letter(route, record)``: the DeadLetter one record of a route's DLQ stands for.

Kafka's parts (AdminClient, producer, reader) are ``queuekit.stacks.kafka``'s
``KafkaLogStack``; a Redis Streams stack would give XINFO/XPENDING-based ones.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from queuekit.core.envelope import Envelope
from queuekit.core.waiting import wait_for

from .base import DeadLetter, PublishReport, Stack


class LogRouteLike(Protocol):
    @property
    def service(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def dlq_topic(self) -> str: ...


class LogTopology(Protocol):
    """What an app's ``topology`` module offers (kafka_app.topology, kafka_share_app.topology)."""

    def Route(self, service: str) -> LogRouteLike: ...  # noqa: N802 - the module's route class
    def routes(self, workload: str) -> Sequence[Any]: ...
    def entry_topic(self, workload: str) -> str: ...
    def subscriptions(self, workload: str) -> list[tuple[str, str]]: ...


class LogAdmin(Protocol):
    def lag(self, subscriptions: Sequence[tuple[str, str]]) -> dict[str, int]: ...
    def groups_ready(self, expected: dict[str, tuple[str, int]]) -> bool: ...
    def describe_groups(self, groups: Sequence[str]) -> str: ...


class LogPublisher(Protocol):
    def publish(self, topic: str, envelopes: Sequence[Envelope]) -> PublishReport: ...
    def publish_raw(self, topic: str, payload: bytes) -> None: ...
    def close(self) -> None: ...


class LogStack(Stack):
    """A Stack whose broker keeps a log and whose consumers are members of groups (see the module docstring)."""

    topology: LogTopology
    admin: LogAdmin
    publisher: LogPublisher
    groups_noun = "groups"  # how the broker calls them, in timeout messages ("share groups")

    # -- readiness: every group has exactly the live workers' members ----------------------------
    def expected_members(self) -> dict[str, tuple[str, int]]:
        """group -> (topic, members): by default ``concurrency`` members per live worker in every group."""
        live = len(self.worker_pids()) * self.options.concurrency
        return {r.group: (r.source, live) for w in self.workloads for r in self.topology.routes(w)}

    def consumers_ready(self) -> bool:
        """Each group has exactly the live workers' members (a SIGKILLed one must time out first)."""
        return self.admin.groups_ready(self.expected_members())

    def describe_consumers(self) -> str:
        return f"{self.groups_noun}: {self.admin.describe_groups(list(self.expected_members()))}"

    def close_clients(self) -> None:
        self.publisher.close()

    # -- producing: to the workload's entry topic, keyed by the partition key ------------------------
    def publish(self, workload: str, envelopes: Sequence[Envelope]) -> PublishReport:
        return self.publisher.publish(self.topology.entry_topic(workload), envelopes)

    def publish_raw(self, workload: str, payload: bytes) -> None:
        self.publisher.publish_raw(self.topology.entry_topic(workload), payload)

    # -- the broker's view -----------------------------------------------------------------------
    def lag(self, workload: str) -> dict[str, int]:
        """Per group of the workload: what the broker counts as not yet consumed."""
        return self.admin.lag(self.topology.subscriptions(workload))

    def backlog(self, workload: str) -> int:
        return sum(self.lag(workload).values())

    def drain(self, workload: str, timeout: float = 60.0) -> None:
        wait_for(lambda: self.backlog(workload) == 0, timeout=timeout,
                 what=f"every {workload} {self.groups_noun[:-1]}'s lag to reach 0",
                 describe=lambda: f"lag per {self.groups_noun[:-1]}: {self.lag(workload)}")

    def in_flight(self) -> dict[str, int]:
        """Pull-based: nothing is pushed to a consumer ahead of its poll(), so nothing is 'delivered, unacked'."""
        return {}

    def dead_letters(self, workload: str) -> list[DeadLetter]:
        """Every record of the workload's dead-letter topics, read by a reader that never consumes them."""
        return [letter for route in self.topology.routes(workload) for letter in self.route_dead_letters(route)]

    def route_dead_letters(self, route: Any) -> list[DeadLetter]:
        return [self.dead_letter(route, record) for record in self.read_log(route.dlq_topic)]

    def fault_target(self, service: str) -> str:
        """The topic ``service`` consumes (its partition 0's leader is what a cluster fault hurts)."""
        return self.topology.Route(service).source

    # -- what a subclass gives ---------------------------------------------------------------------
    def read_log(self, topic: str) -> list[Any]:
        """Every record ``topic`` holds now (none if it does not exist), in (partition, offset) order."""
        raise NotImplementedError(f"{type(self).__name__}.read_log")

    def dead_letter(self, route: Any, record: Any) -> DeadLetter:
        raise NotImplementedError(f"{type(self).__name__}.dead_letter")
