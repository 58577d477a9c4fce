"""What this install created on an external broker: recorded before it is made, deleted only by name.

``$QUEUEKIT_HOME/manifest.json`` (mode 0600) lists ``{"broker", "at", "kind", "name"}``: ``at`` is the
RabbitMQ management URL and vhost, or the Kafka bootstrap servers. On an external (shared) broker:

* ``claim`` runs before a stack declares or resets anything: a name the stack would use that exists
  on the broker and is NOT in the manifest belongs to someone else, and the kit stops with one line
  saying what to set; otherwise the names are recorded (write-ahead: recorded, then created);
* ``record`` adds what the harness makes on the fly (the vhost, throwaway replay groups);
* ``purge_all`` (``queuekit down --purge``) deletes every recorded object, by name, and forgets it.

On the kit's own brokers everything is the kit's: nothing is recorded or checked here.
"""
from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import quote

import httpx
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from queuekit.core.config import Settings, private_dir, write_private
from queuekit.core.errors import KitError

MANIFEST_FILE = "manifest.json"
Listed = dict[str, set[tuple[str, str]]]  # broker -> (kind, name) of what exists there now
Lister = Callable[[set[str]], Listed]
NAMESPACE_SETTING = {"rabbitmq": "QUEUEKIT_RABBIT_VHOST",
                     "kafka": "QUEUEKIT_KAFKA_PREFIX (QUEUEKIT_KAFKA_SHARE_PREFIX for kafka_share)"}


class KitObject(NamedTuple):
    broker: str  # rabbitmq | kafka
    kind: str  # rabbitmq: vhost, queue, exchange; kafka: topic, group (consumer and share groups alike)
    name: str


def where(settings: Settings, broker: str) -> str:
    """The place a name lives: a vhost of a management API, or a Kafka cluster."""
    return f"{settings.mgmt_url} vhost {settings.vhost}" if broker == "rabbitmq" else settings.kafka_bootstrap


class Manifest:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.home / MANIFEST_FILE

    @contextmanager
    def _locked(self) -> Iterator[list[dict]]:
        """The entries, for reading and changing under an exclusive lock (compare's cells claim in parallel)."""
        private_dir(self.settings.home)
        with open(self.settings.home / f".{MANIFEST_FILE}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self.entries()
            before = list(entries)
            yield entries
            if entries != before:
                write_private(self.path, json.dumps(entries, indent=1) + "\n")

    def entries(self) -> list[dict]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return []

    def _entry(self, obj: KitObject) -> dict:
        at = self.settings.mgmt_url if obj.kind == "vhost" else where(self.settings, obj.broker)
        return {"broker": obj.broker, "at": at, "kind": obj.kind, "name": obj.name}

    def recorded(self, objects: Iterable[KitObject]) -> list[KitObject]:
        entries = self.entries()
        return [o for o in objects if self._entry(o) in entries]

    def record(self, objects: Iterable[KitObject]) -> None:
        with self._locked() as entries:
            for entry in map(self._entry, objects):
                if entry not in entries:
                    entries.append(entry)

    def forget(self, objects: Iterable[KitObject]) -> None:
        gone = [self._entry(o) for o in objects]
        with self._locked() as entries:
            entries[:] = [e for e in entries if e not in gone]

    def claim(self, objects: Iterable[KitObject], listed: Lister | None = None) -> None:
        """Record ``objects`` as this install's, or stop (one line) if one exists on the broker unrecorded.
        ``listed`` says what exists (``Stack.listed_objects``: a stack may know kinds the admin client cannot list)."""
        wanted = [o for o in dict.fromkeys(objects) if self.settings.external(o.broker)]
        if not wanted:
            return
        with self._locked() as entries:
            existing = (listed or (lambda brokers: existing_objects(self.settings, brokers)))({o.broker for o in wanted})
            for obj in wanted:
                if (obj.kind, obj.name) in existing.get(obj.broker, ()) and self._entry(obj) not in entries:
                    raise KitError(
                        f"{obj.broker} {obj.kind} {obj.name!r} at {where(self.settings, obj.broker)} exists and this "
                        f"install did not create it (not in {self.path})",
                        f"set {NAMESPACE_SETTING[obj.broker]} to a namespace of your own, or unset it for this "
                        f"install's")
            for entry in map(self._entry, wanted):
                if entry not in entries:
                    entries.append(entry)


def claim(settings: Settings, objects: Iterable[KitObject], listed: Lister | None = None) -> None:
    Manifest(settings).claim(objects, listed)


def record(settings: Settings, objects: Iterable[KitObject]) -> None:
    objects = [o for o in objects if settings.external(o.broker)]
    if objects:
        Manifest(settings).record(objects)


def owned(settings: Settings, objects: Iterable[KitObject]) -> list[KitObject]:
    """Those of ``objects`` this install may delete: all on its own broker, the recorded ones on an external."""
    objects = list(objects)
    external = [o for o in objects if settings.external(o.broker)]
    mine = set(Manifest(settings).recorded(external)) if external else set()
    return [o for o in objects if not settings.external(o.broker) or o in mine]


def present(objects: Iterable[KitObject], listed: Lister) -> list[KitObject]:
    """Those of ``objects`` that exist on their broker now (what a reset is about to delete)."""
    objects = list(objects)
    found = listed({o.broker for o in objects}) if objects else {}
    return [o for o in objects if (o.kind, o.name) in found.get(o.broker, ())]


def existing_objects(settings: Settings, brokers: set[str]) -> Listed:
    """(kind, name) of what is on each broker now: the vhost's queues and exchanges, Kafka's topics and the
    groups ListGroups returns by default (consumer groups; share groups only by type: ``kafka_share``
    adds them in its ``listed_objects``)."""
    found: dict[str, set[tuple[str, str]]] = {}
    if "rabbitmq" in brokers:
        vhost = quote(settings.vhost, safe="")
        with httpx.Client(base_url=f"{settings.mgmt_url}/api", auth=settings.mgmt_auth, timeout=10) as api:
            found["rabbitmq"] = set()
            for kind, path in (("queue", "queues"), ("exchange", "exchanges")):
                r = api.get(f"/{path}/{vhost}", params={"columns": "name"})
                if r.status_code != 404:  # no such vhost yet: nothing in it
                    r.raise_for_status()
                    found["rabbitmq"] |= {(kind, row["name"]) for row in r.json()}
    if "kafka" in brokers:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        topics = admin.list_topics(timeout=10).topics
        groups = admin.list_consumer_groups(request_timeout=10).result()
        found["kafka"] = {("topic", t) for t in topics} | {("group", g.group_id) for g in groups.valid}
    return found


def purge_all(settings: Settings, say: Callable[[str], None]) -> list[dict]:
    """Delete every recorded object this install made at the current endpoints, by name; forget what is gone.
    Returns the entries left (a group with live members, another endpoint's objects)."""
    manifest = Manifest(settings)
    entries = manifest.entries()
    rabbit_at, vhost_at, kafka_at = where(settings, "rabbitmq"), settings.mgmt_url, settings.kafka_bootstrap
    gone: list[dict] = []
    queues = [e for e in entries if e["broker"] == "rabbitmq" and e["at"] == rabbit_at and e["kind"] != "vhost"]
    vhosts = [e for e in entries if e["kind"] == "vhost" and e["at"] == vhost_at]
    kafka = [e for e in entries if e["broker"] == "kafka" and e["at"] == kafka_at]
    if queues or vhosts:
        with httpx.Client(base_url=f"{settings.mgmt_url}/api", auth=settings.mgmt_auth, timeout=30) as api:
            vhost = quote(settings.vhost, safe="")
            for e in queues:  # in a vhost the install did not make (QUEUEKIT_RABBIT_VHOST): its own names only
                r = api.delete(f"/{e['kind']}s/{vhost}/{quote(e['name'], safe='')}")
                if r.status_code in (204, 404):
                    gone.append(e)
            for e in vhosts:  # made by this install: with everything in it
                r = api.delete(f"/vhosts/{quote(e['name'], safe='')}")
                if r.status_code in (204, 404):
                    gone.append(e)
                    say(f"RabbitMQ: deleted vhost {e['name']!r}")
    if kafka:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        groups = [e for e in kafka if e["kind"] == "group"]
        if groups:  # consumer and share groups alike; one with live members answers NON_EMPTY_GROUP: stays recorded
            futures = admin.delete_consumer_groups([e["name"] for e in groups])
            gone += [e for e in groups if _done(futures[e["name"]], KafkaError.GROUP_ID_NOT_FOUND)]
        topics = [e for e in kafka if e["kind"] == "topic"]
        existing = admin.list_topics(timeout=10).topics
        gone += [e for e in topics if e["name"] not in existing]
        doomed = [e for e in topics if e["name"] in existing]
        if doomed:
            futures = admin.delete_topics([e["name"] for e in doomed], operation_timeout=30)
            gone += [e for e in doomed if _done(futures[e["name"]], KafkaError.UNKNOWN_TOPIC_OR_PART)]
        say(f"Kafka: deleted {sum(e in gone for e in topics)} topic(s) and {sum(e in gone for e in groups)} "
            f"group(s) of this install")
    if settings.external_redis_url:
        _purge_redis(settings, say)
    with manifest._locked() as current:
        current[:] = [e for e in current if e not in gone]
        return list(current)


def _purge_redis(settings: Settings, say: Callable[[str], None]) -> None:
    """A Redis keeps the kit's record in itself (``core/redis_keys.py``): every recorded name under the
    install's prefix, and every other key under it when the prefix is the install's own ``qk:<install id>:``
    (a prefix set with QUEUEKIT_REDIS_PREFIX may be shared: only recorded names are deleted there)."""
    import os

    from queuekit.core.redis_client import connect
    from queuekit.core.redis_keys import purge_install

    client = connect(settings)
    try:
        deleted = purge_install(client, settings.redis_prefix, sweep="QUEUEKIT_REDIS_PREFIX" not in os.environ)
    finally:
        client.close()
    say(f"Redis: deleted {deleted} key(s) of this install under {settings.redis_prefix!r}")


def _done(future, absent: int) -> bool:
    """The deletion happened (or the object was already gone); False for a refusal (e.g. a group with members)."""
    try:
        future.result()
    except KafkaException as exc:
        return exc.args[0].code() == absent
    return True
