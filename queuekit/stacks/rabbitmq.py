"""RabbitMQ as both RabbitMQ stacks see it: the management API's view of queues.

Celery and Dramatiq share these reads (queue depth, unacked, consumers, dead
letters), so the two adapters measure the broker the same way.
"""
from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from queuekit.core.config import Settings
from queuekit.core.waiting import wait_for
from queuekit.stacks.reset import Purged


@dataclass(frozen=True)
class QueueStats:
    name: str
    ready: int
    unacked: int
    consumers: int

    @property
    def backlog(self) -> int:
        return self.ready + self.unacked


class Management:
    """A thin client of RabbitMQ's HTTP management API."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.vhost = quote(settings.vhost, safe="")
        self.http = httpx.Client(base_url=settings.mgmt_url + "/api", auth=settings.mgmt_auth, timeout=10)

    def queues(self, prefix: str = "") -> list[QueueStats]:
        rows = self.http.get(f"/queues/{self.vhost}", params={"columns": "name,messages_ready,messages_unacknowledged,consumers"})
        rows.raise_for_status()
        return [QueueStats(q["name"], q.get("messages_ready", 0) or 0, q.get("messages_unacknowledged", 0) or 0,
                           q.get("consumers", 0) or 0)
                for q in rows.json() if q["name"].startswith(prefix)]

    def queue_details(self, prefix: str = "") -> dict[str, dict]:
        """Name -> the API's whole row (depths, consumers, ``message_stats`` counters) for queues with ``prefix``."""
        rows = self.http.get(f"/queues/{self.vhost}")
        rows.raise_for_status()
        return {q["name"]: q for q in rows.json() if q["name"].startswith(prefix)}

    def queue(self, name: str) -> QueueStats | None:
        r = self.http.get(f"/queues/{self.vhost}/{quote(name, safe='')}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        q = r.json()
        return QueueStats(name, q.get("messages_ready", 0) or 0, q.get("messages_unacknowledged", 0) or 0,
                          q.get("consumers", 0) or 0)

    def peek(self, queue: str, count: int = 1000) -> list[tuple[bytes, dict]]:
        """Read messages without consuming them (fetched, then requeued): (body, headers)."""
        r = self.http.post(f"/queues/{self.vhost}/{quote(queue, safe='')}/get",
                           json={"count": count, "ackmode": "ack_requeue_true", "encoding": "base64"})
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return [(base64.b64decode(m["payload"]), (m.get("properties") or {}).get("headers") or {}) for m in r.json()]

    def delete_kit_queues(self, names: list[str], dead_letter_queues: list[str], purged: Purged,
                          kind: str = "queue") -> None:
        """Delete exactly these queues (reset), noting in ``purged`` those that existed and the messages
        each dead-letter queue held (never silently)."""
        present = {q.name: q for q in self.queues()}
        purged.dead({n: present[n].backlog for n in dead_letter_queues if n in present})
        for name in names:
            if name in present:
                r = self.http.delete(f"/queues/{self.vhost}/{quote(name, safe='')}")
                if r.status_code not in (204, 404):
                    r.raise_for_status()
        purged.deleted(kind, [n for n in names if n in present])

    def delete_exchanges_named(self, names: list[str], purged: Purged) -> None:
        """Delete these exchanges by name, noting those that existed."""
        for name in names:
            r = self.http.delete(f"/exchanges/{self.vhost}/{quote(name, safe='')}")
            if r.status_code == 204:
                purged.deleted("exchange", [name])
            elif r.status_code != 404:
                r.raise_for_status()

    def delete_queues(self, prefix: str) -> None:
        for q in self.queues(prefix):
            self.http.delete(f"/queues/{self.vhost}/{quote(q.name, safe='')}")

    def delete_exchanges(self, prefix: str) -> None:
        r = self.http.get(f"/exchanges/{self.vhost}", params={"columns": "name"})
        r.raise_for_status()
        for ex in r.json():
            if ex["name"].startswith(prefix):
                self.http.delete(f"/exchanges/{self.vhost}/{quote(ex['name'], safe='')}")

    def channel_prefetch_unacked(self) -> list[dict]:
        """Per consumer channel: prefetch and messages held unacked (for back-pressure)."""
        r = self.http.get("/channels", params={"columns": "name,prefetch_count,messages_unacknowledged,consumer_count"})
        r.raise_for_status()
        return r.json()

    def consumer_counts(self, prefix: str) -> dict[str, int]:
        return {q.name: q.consumers for q in self.queues(prefix)}

    def consumers_on(self, queues: list[str], prefix: str = "") -> int:
        """The fewest consumers on any of ``queues`` (0 when one is not declared yet)."""
        seen = self.consumer_counts(prefix)
        return min((seen.get(q, 0) for q in queues), default=0)

    def unacked_per_consumer_channel(self, prefix: str, exclude_suffix: str) -> dict[str, int]:
        """Per channel consuming one of our queues (not the dead-letter ones): messages delivered, not acked."""
        consumers = self.http.get(f"/consumers/{self.vhost}").json()
        # a consumer whose channel closed while the API listed it comes with "channel_details": [] (no name)
        ours = {c["channel_details"]["name"] for c in consumers if isinstance(c.get("channel_details"), dict)
                and c["queue"]["name"].startswith(prefix) and not c["queue"]["name"].endswith(exclude_suffix)}
        return {ch["name"]: ch.get("messages_unacknowledged", 0) or 0
                for ch in self.channel_prefetch_unacked() if ch["name"] in ours}

    def unacked_per_named_connection(self, prefix: str, exclude: str) -> dict[str, int]:
        """Per client-named connection (``user_provided_name`` starting ``prefix``, not ``exclude``): messages its
        consuming channels hold delivered, not acked. For a framework whose worker process is one named connection
        (Dramatiq) this is "held per worker"."""
        rows = self.http.get("/connections", params={"columns": "name,user_provided_name"})
        rows.raise_for_status()
        names = {c["name"]: c.get("user_provided_name") for c in rows.json()}
        channels = self.http.get("/channels", params={"columns": "connection_details,messages_unacknowledged,consumer_count"})
        channels.raise_for_status()
        held: dict[str, int] = {}
        for ch in channels.json():
            client = names.get((ch.get("connection_details") or {}).get("name"))
            if ch.get("consumer_count") and client and client.startswith(prefix) and client != exclude:
                held[client] = held.get(client, 0) + (ch.get("messages_unacknowledged") or 0)
        return held

    def backlog(self, queues: list[str]) -> int:
        stats = {q.name: q for q in self.queues()}
        return sum(stats[name].backlog for name in queues if name in stats)

    def wait_settled(self, queues: list[str], timeout: float) -> None:
        """Poll until ready + unacked is 0 on every queue in ``queues`` (pass the
        work, retry and delay queues; not the dead-letter ones, which keep theirs).

        The management API's counters lag the broker (about 1 s with the kit's
        sample-retention settings, 5 s with RabbitMQ's defaults), so a zero read
        right after a publish may predate it. A probe message published now
        shows when the API has a snapshot newer than this call; only zeros read
        after that count, twice in a row.
        """
        deadline = time.monotonic() + timeout
        self.wait_fresh(timeout)
        zeros = []

        def settled() -> bool:
            zeros.append(self.backlog(queues) == 0)
            return len(zeros) >= 2 and zeros[-1] and zeros[-2]

        wait_for(settled, timeout=max(1.0, deadline - time.monotonic()), interval=STATS_INTERVAL_S,
                 what=f"queues {queues} to settle",
                 describe=lambda: str([q for q in self.queues() if q.name in queues and q.backlog]))

    def wait_fresh(self, timeout: float = 30.0) -> None:
        """Return once the management API's view is newer than this call (see ``wait_settled``)."""
        probe = f"queuekit.stats-probe.{uuid.uuid4().hex[:8]}"
        path = f"/queues/{self.vhost}/{quote(probe, safe='')}"
        self.http.put(path, json={"durable": False, "arguments": {"x-expires": 60_000}}).raise_for_status()
        try:
            self.http.post(f"/exchanges/{self.vhost}/amq.default/publish",
                           json={"routing_key": probe, "payload": "probe", "payload_encoding": "string",
                                 "properties": {}}).raise_for_status()
            wait_for(lambda: (q := self.queue(probe)) is not None and q.ready == 1, timeout=timeout,
                     what="a management API snapshot newer than the probe message")
        finally:
            self.http.delete(path)

    def close(self) -> None:
        self.http.close()


STATS_INTERVAL_S = 0.5  # matches collect_statistics_interval in queuekit/brokers/rabbitmq.py


def x_death(headers: dict) -> str:
    """What RabbitMQ's dead-lettering recorded (the newest ``x-death`` entry): reason and source queue."""
    deaths = headers.get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    return f"{death.get('reason', 'dead-lettered')} on {death.get('queue', '?')}"
