"""The share-group admin requests confluent-kafka 2.16 lacks, spoken over Kafka's wire protocol.

confluent-kafka's AdminClient neither lists, describes nor reads the offsets
of share groups (``describe_consumer_groups`` answers DEAD for one, and
``list_consumer_groups`` leaves them out). The broker answers these three
requests, so the harness asks it directly, over one short-lived socket per
call, instead of starting a JVM (``kafka-share-groups.sh``) on every poll:

    ShareGroupDescribe        (API 77, v1)   members and their assignments
    DescribeShareGroupOffsets (API 90, v1)   each share-partition's start offset and lag
    ListGroups                (API 16, v5)   group ids filtered by type "share"

Only what the harness reads is decoded. On a cluster a group lives on one
coordinator: a group request goes to each bootstrap broker in turn until one
does not answer NOT_COORDINATOR, and ListGroups asks every broker (each lists
only the groups it coordinates).
Ask only for partitions that exist: Kafka 4.4 never answered a
DescribeShareGroupOffsets naming a partition the topic does not have (its log:
"Exhausted max retries for read state summary"), so the call times out.
"""
from __future__ import annotations

import io
import itertools
import socket
import struct
from dataclasses import dataclass

from queuekit.core.errors import KitError

CLIENT_ID = b"qk.share-admin"
TIMEOUT_S = 10.0
NOT_COORDINATOR, GROUP_ID_NOT_FOUND = 16, 69
_correlation = itertools.count(1)


# -- encoding (flexible versions: compact strings / arrays, tagged fields) ----------------------
def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    raw = s.encode()
    return _uvarint(len(raw) + 1) + raw


def _array(items: list[bytes]) -> bytes:
    return _uvarint(len(items) + 1) + b"".join(items)


TAGS = _uvarint(0)  # no tagged fields


class _Reader:
    def __init__(self, data: bytes):
        self.buf = io.BytesIO(data)

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(">" + fmt, self.buf.read(size))[0]

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.buf.read(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def string(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.buf.read(n).decode()

    def array(self, item) -> list:
        n = self.uvarint() - 1
        return [item() for _ in range(max(n, 0))]

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.buf.read(self.uvarint())


def _call(bootstrap: str, api_key: int, version: int, body: bytes) -> _Reader:
    """One request (header v2) and its response (header v1) on a fresh connection."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    correlation = next(_correlation)
    header = struct.pack(">hhih", api_key, version, correlation, len(CLIENT_ID)) + CLIENT_ID + TAGS
    request = header + body
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            size = struct.unpack(">i", _read_exactly(sock, 4))[0]
            reader = _Reader(_read_exactly(sock, size))
    except OSError as exc:
        raise KitError(f"Kafka at {bootstrap} did not answer a share-group admin request: {exc}",
                       "start it with `queuekit up`") from exc
    if reader.unpack("i") != correlation:
        raise KitError("Kafka answered another request than the one sent", "retry; report it if it repeats")
    reader.tags()
    return reader


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed mid-response")
        data += chunk
    return bytes(data)


class NotCoordinator(KitError):
    """The broker asked does not coordinate the group: ``_on_coordinator`` asks the next one."""


def _check(error: int, what: str, message: str | None = None) -> None:
    if error == NOT_COORDINATOR:
        raise NotCoordinator(f"{what}: no bootstrap broker is the group's coordinator",
                             "check that every broker of the cluster is in the bootstrap list")
    if error:
        raise KitError(f"{what}: Kafka error code {error} {message or ''}".strip(), "see the broker log")


# -- the three requests -------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    assignment: dict[str, list[int]]  # topic -> partitions


@dataclass(frozen=True)
class ShareGroup:
    group_id: str
    state: str  # "Stable", "Empty", "Dead" (unknown group) …
    members: list[Member]


def _on_coordinator(bootstrap: str, ask):
    """``ask(server)`` on each bootstrap server in turn until one coordinates the group (a single node: the first)."""
    servers = bootstrap.split(",")
    for server in servers[:-1]:
        try:
            return ask(server)
        except NotCoordinator:
            continue
    return ask(servers[-1])


def describe_share_groups(bootstrap: str, groups: list[str]) -> dict[str, ShareGroup]:
    """One request per group: on a cluster each may have another coordinator."""
    return {g: _on_coordinator(bootstrap, lambda server, g=g: _describe(server, [g])[g]) for g in groups}


def _describe(bootstrap: str, groups: list[str]) -> dict[str, ShareGroup]:
    body = _array([_str(g) for g in groups]) + b"\x00" + TAGS  # IncludeAuthorizedOperations=false
    r = _call(bootstrap, 77, 1, body)
    r.unpack("i")  # throttle

    def topic_partitions() -> tuple[str, list[int]]:
        r.buf.read(16)  # topic id
        name = r.string() or ""
        parts = r.array(lambda: r.unpack("i"))
        r.tags()
        return name, parts

    def member() -> Member:
        member_id, _rack, _epoch = r.string() or "", r.string(), r.unpack("i")
        client_id, _host = r.string() or "", r.string()
        r.array(r.string)  # subscribed topics
        assignment = dict(r.array(topic_partitions))
        r.tags()  # end of Assignment
        r.tags()
        return Member(member_id, client_id, assignment)

    def group() -> ShareGroup:
        error, message, group_id = r.unpack("h"), r.string(), r.string() or ""
        state = r.string() or ""
        r.unpack("i"), r.unpack("i"), r.string()  # group epoch, assignment epoch, assignor
        members = r.array(member)
        r.unpack("i")  # authorized operations
        r.tags()
        if error == GROUP_ID_NOT_FOUND:
            return ShareGroup(group_id, "Dead", [])
        _check(error, f"describing share group {group_id}", message)
        return ShareGroup(group_id, state, members)

    return {g.group_id: g for g in r.array(group)}


@dataclass(frozen=True)
class SharePartition:
    start: int  # share-partition start offset (SPSO): every record below it is acknowledged or archived
    lag: int  # records the group has not yet acknowledged or archived (available + acquired), per the broker


def share_group_offsets(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, SharePartition]:
    """partition -> what the broker reports for ``group`` on it; partitions the group never read are absent
    or carry start -1. v1 adds the broker-computed lag (Kafka 4.2+); the SPSO alone trails acknowledgements
    (it was seen staying at a batch's first offset after every record of the batch was accepted)."""
    return _on_coordinator(bootstrap, lambda server: _offsets(server, group, topic, partitions))


def _offsets(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, SharePartition]:
    wanted = _array([_str(topic) + _array([struct.pack(">i", p) for p in partitions]) + TAGS])
    r = _call(bootstrap, 90, 1, _array([_str(group) + wanted + TAGS]) + TAGS)
    r.unpack("i")
    found: dict[int, SharePartition] = {}

    def partition() -> None:
        index, start, _epoch, lag = r.unpack("i"), r.unpack("q"), r.unpack("i"), r.unpack("q")
        error, message = r.unpack("h"), r.string()
        r.tags()
        _check(error, f"share offsets of {group} on {topic}/{index}", message)
        found[index] = SharePartition(start, lag)

    def topic_() -> None:
        r.string(), r.buf.read(16)
        r.array(partition)
        r.tags()

    def group_() -> None:
        r.string()
        r.array(topic_)
        error, message = r.unpack("h"), r.string()
        r.tags()
        if error != GROUP_ID_NOT_FOUND:
            _check(error, f"share offsets of {group}", message)

    r.array(group_)
    return found


def list_share_groups(bootstrap: str) -> list[str]:
    """Every broker's answer: each lists the groups it coordinates."""
    return list(dict.fromkeys(g for server in bootstrap.split(",") for g in _list(server)))


def _list(bootstrap: str) -> list[str]:
    body = _array([]) + _array([_str("share")]) + TAGS  # StatesFilter (any), TypesFilter
    r = _call(bootstrap, 16, 5, body)
    r.unpack("i")
    _check(r.unpack("h"), "listing share groups")

    def group() -> str:
        group_id, _ptype, _state, _type = r.string() or "", r.string(), r.string(), r.string()
        r.tags()
        return group_id

    return r.array(group)
