"""Broker ceilings: what each broker's own load tool reaches here, with the stacks' settings.

* RabbitMQ PerfTest (``com.rabbitmq:perf-test``): one producer, ``slots``
  consumers, persistent messages on a durable queue, publisher confirms,
  prefetch (qos) = the stacks' prefetch, manual ack per message; producer and
  consumers run together for ``seconds`` and the tool's own averages are kept.
* Kafka ``ProducerPerformance`` (acks=all, idempotent) fills a topic with
  ``slots`` partitions, then ``ConsumerPerformance`` reads it back; its fetch
  rate (rebalance time excluded) is the consume ceiling.

Jars come from Maven Central once (``tools-pom.xml``, one profile per tool)
into the kit's cache, like the broker's (``queuekit/brokers/kafka.py``).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuekit.core.config import Settings
from queuekit.core.errors import KitError

POM = Path(__file__).with_name("tools-pom.xml")
MAIN = {"perftest": "com.rabbitmq.perf.PerfTest", "producer": "org.apache.kafka.tools.ProducerPerformance",
        "consumer": "org.apache.kafka.tools.ConsumerPerformance"}


def versions() -> dict[str, str]:
    text = POM.read_text()
    return {name: _found(rf"<{name}.version>([^<]+)<", text) for name in ("perftest", "kafka")}


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise KitError(f"the tool's output has no {pattern!r}: {text.strip()[-300:]}", "see the output above")
    return match.group(1)


def resolve(settings: Settings, profile: str, say: Callable[[str], None]) -> Path:
    """The jar directory of ``profile`` ("perftest" | "kafka-tools"), resolved with mvn on first use."""
    v = versions()
    libs = settings.cache_dir / f"bench-tools-{v['perftest']}-{v['kafka']}" / profile
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KitError("'mvn' was not found on PATH", "install Maven: apt-get install -y maven")
    say(f"resolving {profile} from Maven Central into {libs} (first run only)…")
    staging = libs.with_name(f"{profile}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    done = subprocess.run([mvn, "-B", "-q", "-f", str(POM), "-P", profile, "dependency:copy-dependencies",
                           f"-DoutputDirectory={staging}", "-DincludeScope=runtime"], capture_output=True, text=True)
    if done.returncode != 0:
        raise KitError(f"Maven could not resolve {profile}: {(done.stdout + done.stderr).strip()[-200:]}",
                       "check that Maven Central is reachable")
    (staging / ".complete").write_text("ok")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


def _java(libs: Path, main: str, args: list[str], timeout: float) -> str:
    java = shutil.which("java")
    if java is None:
        raise KitError("'java' was not found on PATH", "install a JRE 17+: apt-get install -y default-jre-headless")
    done = subprocess.run([java, "-Xmx512m", "-cp", f"{libs}/*", main, *args], capture_output=True, text=True,
                          timeout=timeout)
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise KitError(f"{main.rsplit('.', 1)[-1]} failed: {out.strip()[-300:]}", "see the message above")
    return out


def perftest(settings: Settings, libs: Path, *, consumers: int, prefetch: int, size: int, seconds: int) -> dict:
    queue = f"bench.perftest.{uuid.uuid4().hex[:6]}"
    args = ["-h", settings.pika_url, "-x", "1", "-y", str(consumers),
            "-f", "persistent",  # delivery mode 2 on a durable queue, as the stacks publish
            "-c", "256",  # publisher confirms, up to 256 outstanding (the stacks wait for each)
            "-q", str(prefetch),  # basic.qos per consumer: the stacks' prefetch
            "-s", str(size), "-z", str(seconds), "-u", queue, "-ad", "false"]  # manual ack per message: default
    out = _java(libs, MAIN["perftest"], args, timeout=seconds + 60)
    _delete_queue(settings, queue)
    rate = lambda what: float(_found(rf"{what} rate avg: (\d+)", out))
    return {"tool": f"PerfTest {versions()['perftest']}", "publish_rate": rate("sending"),
            "rate": rate("receiving"), "args": " ".join(args[2:])}


def _delete_queue(settings: Settings, queue: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(settings.pika_url))
    conn.channel().queue_delete(queue)
    conn.close()


def kafka_perf(settings: Settings, libs: Path, *, partitions: int, size: int, records: int) -> dict:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench.perf.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    try:
        produced = _java(libs, MAIN["producer"], [
            "--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
            "--bootstrap-server", settings.kafka_bootstrap,
            "--command-property", "acks=all",  # as the stacks' producers (idempotence is the default)
        ], timeout=300)
        consumed = _java(libs, MAIN["consumer"], [
            "--bootstrap-server", settings.kafka_bootstrap, "--topic", topic, "--messages", str(records),
            "--group", f"{topic}.g", "--timeout", "60000",
        ], timeout=300)
    finally:
        admin.delete_topics([topic])
    sent = re.search(r"records sent, ([\d.]+) records/sec", produced)
    header, row = [line for line in consumed.splitlines() if "," in line][-2:]
    fields = dict(zip([h.strip() for h in header.split(",")], [c.strip() for c in row.split(",")]))
    return {"tool": f"kafka-tools {versions()['kafka']} ProducerPerformance/ConsumerPerformance",
            "publish_rate": float(sent.group(1)) if sent else 0.0, "rate": float(fields["fetch.nMsg.sec"]),
            "records": records}


def ceilings(settings: Settings, *, slots: int, prefetch: int, size: int, seconds: int, records: int,
             say: Callable[[str], None]) -> dict[str, Any]:
    say(f"ceiling: RabbitMQ PerfTest, {slots} consumers, prefetch {prefetch}, {size} B, {seconds} s")
    rabbit = perftest(settings, resolve(settings, "perftest", say), consumers=slots, prefetch=prefetch, size=size,
                      seconds=seconds)
    say(f"ceiling: Kafka ProducerPerformance + ConsumerPerformance, {records} x {size} B, {slots} partitions")
    kafka = kafka_perf(settings, resolve(settings, "kafka-tools", say), partitions=slots, size=size, records=records)
    return {"rabbitmq": rabbit, "kafka": kafka}
