"""One view across the stacks: RabbitMQ queues, Kafka consumer groups and topics, Celery workers."""
from __future__ import annotations

import time
from typing import Any

import httpx
from rich.console import Group
from rich.table import Table

from queuekit.core.config import Settings
from queuekit.stacks.rabbitmq import Management

DLQ_MARKERS = (".dlq", ".XQ")  # Celery's dead-letter queues, Dramatiq's; Kafka's DLQ topics end in .dlq


def rabbitmq_snapshot(settings: Settings) -> list[dict[str, Any]]:
    mgmt = Management(settings)
    try:
        return [{"queue": q.name, "ready": q.ready, "unacked": q.unacked, "consumers": q.consumers,
                 "dead_letter": q.name.endswith(DLQ_MARKERS)} for q in mgmt.queues()]
    finally:
        mgmt.close()


def kafka_snapshot(settings: Settings, timeout: float = 10.0) -> dict[str, Any]:
    """Consumer groups (members, lag per partition) and DLQ topic sizes, from the AdminClient."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0}
    admin = AdminClient(conf)
    probe = Consumer({**conf, "group.id": "queuekit.monitor", "enable.auto.commit": False})
    try:
        metadata = admin.list_topics(timeout=timeout)
        high = {}
        for topic, meta in metadata.topics.items():
            if topic.startswith("__"):
                continue
            for p in meta.partitions:
                high[(topic, p)] = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
        group_ids = [g.group_id for g in admin.list_consumer_groups().result(timeout).valid
                     if g.group_id != "queuekit.monitor"]
        groups = []
        described = admin.describe_consumer_groups(group_ids) if group_ids else {}
        for gid in group_ids:
            desc = described[gid].result(timeout)
            offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)])[gid].result(timeout)
            lag = {f"{tp.topic}[{tp.partition}]": max(high.get((tp.topic, tp.partition), 0) - max(tp.offset, 0), 0)
                   for tp in offsets.topic_partitions}
            groups.append({"group": gid, "state": str(desc.state).split(".")[-1], "members": len(desc.members),
                           "lag": lag, "total_lag": sum(lag.values())})
        dlq = {topic: sum(v for (t, _), v in high.items() if t == topic)
               for topic in metadata.topics if topic.endswith(".dlq")}
        return {"groups": groups, "dlq_topics": dlq}
    finally:
        probe.close()


def celery_snapshot(settings: Settings) -> list[dict[str, Any]]:
    r = httpx.get(f"{settings.flower_url}/api/workers", params={"refresh": "true"}, auth=settings.flower_auth,
                  timeout=10)
    r.raise_for_status()
    return [{"worker": name, "active": len(info.get("active") or []), "registered": len(info.get("registered") or [])}
            for name, info in r.json().items()]


def snapshot(settings: Settings) -> dict[str, Any]:
    """Everything at one moment; a part that cannot be read says why instead of failing the rest."""
    out: dict[str, Any] = {"taken_at": time.time()}
    for name, read in (("rabbitmq", rabbitmq_snapshot), ("kafka", kafka_snapshot), ("celery", celery_snapshot)):
        try:
            out[name] = read(settings)
        except Exception as exc:  # noqa: BLE001 - shown in the view, the others still render
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return out


def render(snap: dict[str, Any]) -> Group:
    parts = []
    rabbit = Table(title="RabbitMQ queues")
    for col in ("queue", "ready", "unacked", "consumers", "DLQ"):
        rabbit.add_column(col)
    rows = snap["rabbitmq"]
    for q in rows if isinstance(rows, list) else []:
        rabbit.add_row(q["queue"], str(q["ready"]), str(q["unacked"]), str(q["consumers"]),
                       "[red]dead letters[/red]" if q["dead_letter"] else "")
    parts.append(rabbit if isinstance(rows, list) else f"RabbitMQ: {rows['error']}")
    kafka = snap["kafka"]
    if "error" in kafka:
        parts.append(f"Kafka: {kafka['error']}")
    else:
        groups = Table(title="Kafka consumer groups")
        for col in ("group", "state", "members", "total lag", "lag per partition"):
            groups.add_column(col)
        for g in kafka["groups"]:
            groups.add_row(g["group"], g["state"], str(g["members"]), str(g["total_lag"]),
                           " ".join(f"{k}:{v}" for k, v in g["lag"].items()))
        parts.append(groups)
        dlq = Table(title="Kafka DLQ topics")
        dlq.add_column("topic")
        dlq.add_column("records")
        for topic, n in kafka["dlq_topics"].items():
            dlq.add_row(topic, str(n))
        parts.append(dlq)
    celery = snap["celery"]
    workers = Table(title="Celery workers (Flower)")
    for col in ("worker", "active", "registered tasks"):
        workers.add_column(col)
    for w in celery if isinstance(celery, list) else []:
        workers.add_row(w["worker"], str(w["active"]), str(w["registered"]))
    parts.append(workers if isinstance(celery, list) else f"Celery/Flower: {celery['error']}")
    return Group(*parts)
