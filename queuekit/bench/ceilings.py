"""Broker ceilings: what each broker's own load tool reaches here, measured the way the stacks are.

The stacks and raw clients drain a backlog published before any consumer runs, so the tools do too:

* RabbitMQ PerfTest (``com.rabbitmq:perf-test``), in two runs on one durable queue: first one producer
  alone publishes ``backlog`` persistent messages with publisher confirms (the publish ceiling), then
  ``slots`` consumers alone, prefetch (qos) = the stacks' prefetch, manual ack per message, drain it for
  ``seconds`` (the consume ceiling). The backlog must outlast the drain, or the average counts idle
  consumers: what is left on the queue afterwards is recorded (``left``), and 0 is flagged.
  (Run together, as before, PerfTest's consumers were bounded by its own confirmed publishing.)
* Kafka ``ProducerPerformance`` (acks=all, idempotent) fills a topic with ``slots`` partitions, then
  ``ConsumerPerformance`` reads it back; its fetch rate (the group's join excluded: rebalance.time.ms)
  is the consume ceiling. When that fetch lasted under ``min_seconds``, the topic is topped up to last
  about that long at the rate seen (at most ``MAX_TOP_UP_S`` of producing per top-up) and read again by
  a fresh group: a ceiling over 1 s of reading is mostly start-up. ``fetch_seconds`` says how long the
  reported read lasted.

* Redis ``redis-benchmark`` (Debian's redis-tools), in two runs on one stream: ``records`` XADDs of a
  ``size``-byte field from ``slots`` clients, not pipelined (``-P 1``: one request, one reply, as each of
  the stacks' consumers works), fill it (the publish ceiling); then ``records`` ``XREADGROUP ... COUNT 1
  NOACK`` from ``slots`` clients read it back, one entry per request (the consume ceiling: a read and its
  acknowledgement in one command, so an upper bound for a consumer that XACKs apart). redis-benchmark
  takes a password only on its command line, where any local user could read it: the run uses a
  throwaway ACL user without one, allowed XADD and XREADGROUP on that one stream only, deleted after.

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
TOP_UPS = 3  # a first read of a fresh topic is slower than the next: the top-up may take more than one try
MAX_TOP_UP_S = 60  # of producing per top-up: the read may stay under min_seconds (its fetch_seconds says so)
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


def perftest(settings: Settings, libs: Path, *, consumers: int, prefetch: int, size: int, seconds: int,
             backlog: int) -> dict:
    queue = f"bench.perftest.{uuid.uuid4().hex[:6]}"
    common = ["-h", settings.pika_url, "-u", queue, "-ad", "false", "-s", str(size)]  # durable, not auto-deleted
    publish = ["-x", "1", "-y", "0", "-C", str(backlog),  # the producer alone, a fixed count: the backlog
               "-f", "persistent",  # delivery mode 2 on a durable queue, as the stacks publish
               "-c", "256"]  # publisher confirms, up to 256 outstanding (the stacks' publishers wait likewise)
    drain = ["-x", "0", "-y", str(consumers), "-p",  # the consumers alone, on the predeclared queue
             "-q", str(prefetch),  # basic.qos per consumer: the stacks' prefetch; manual ack per message (default)
             "-z", str(seconds)]
    try:
        published = _java(libs, MAIN["perftest"], common + publish, timeout=600)
        drained = _java(libs, MAIN["perftest"], common + drain, timeout=seconds + 60)
        left = _queue_depth(settings, queue)
    finally:
        _delete_queue(settings, queue)
    rate = lambda what, out: float(_found(rf"{what} rate avg: (\d+)", out))
    return {"tool": f"PerfTest {versions()['perftest']}", "publish_rate": rate("sending", published),
            "rate": rate("receiving", drained), "backlog": backlog, "left": left,
            "outlasted": left > 0,  # False: the consumers ran dry before the end, the rate is an underestimate
            "args": {"publish": " ".join(common[2:] + publish), "drain": " ".join(common[2:] + drain)}}


def _queue_depth(settings: Settings, queue: str) -> int:
    import pika

    with pika.BlockingConnection(pika.URLParameters(settings.pika_url)) as conn:
        return conn.channel().queue_declare(queue, passive=True).method.message_count


def _delete_queue(settings: Settings, queue: str) -> None:
    import pika

    with pika.BlockingConnection(pika.URLParameters(settings.pika_url)) as conn:
        conn.channel().queue_delete(queue)


def kafka_perf(settings: Settings, libs: Path, *, partitions: int, size: int, records: int,
               min_seconds: float = 0.0) -> dict:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench.perf.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)

    def produce(n: int) -> float:
        out = _java(libs, MAIN["producer"], [
            "--topic", topic, "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
            "--bootstrap-server", settings.kafka_bootstrap,
            "--command-property", "acks=all",  # as the stacks' producers (idempotence is the default)
        ], timeout=600)
        sent = re.search(r"records sent, ([\d.]+) records/sec", out)
        return float(sent.group(1)) if sent else 0.0

    def consume(n: int) -> dict[str, str]:
        out = _java(libs, MAIN["consumer"], [
            "--bootstrap-server", settings.kafka_bootstrap, "--topic", topic, "--messages", str(n),
            "--group", f"{topic}.g{uuid.uuid4().hex[:4]}",  # a fresh group each read: from the start
            "--timeout", "60000",
        ], timeout=600)
        header, row = [line for line in out.splitlines() if "," in line][-2:]
        return dict(zip([h.strip() for h in header.split(",")], [c.strip() for c in row.split(",")]))

    try:
        publish_rate = produce(records)
        fields = consume(records)
        fetch_s = float(fields["fetch.time.ms"]) / 1000  # after the group was assigned (rebalance excluded)
        for _ in range(TOP_UPS):  # too short to be a ceiling: top up to ~min_seconds of reading, read again
            if fetch_s >= min_seconds:
                break
            more = int(float(fields["fetch.nMsg.sec"]) * min_seconds * 1.3) - records  # a warm read is faster
            more = min(more, int(publish_rate * MAX_TOP_UP_S))  # producing is ~10-50x slower than reading here
            if more <= 0:
                break
            produce(more)
            records += more
            fields = consume(records)
            fetch_s = float(fields["fetch.time.ms"]) / 1000
    finally:
        admin.delete_topics([topic])
    return {"tool": f"kafka-tools {versions()['kafka']} ProducerPerformance/ConsumerPerformance",
            "publish_rate": publish_rate, "rate": float(fields["fetch.nMsg.sec"]), "records": records,
            "fetch_seconds": round(fetch_s, 2), "join_seconds": round(float(fields["rebalance.time.ms"]) / 1000, 2)}


def redis_benchmark(settings: Settings, *, clients: int, size: int, records: int) -> dict:
    from urllib.parse import urlsplit

    from queuekit.core.redis_client import connect

    tool = shutil.which("redis-benchmark")
    if tool is None:
        raise KitError("'redis-benchmark' was not found on PATH", "install it: apt-get install -y redis-tools")
    if settings.external_redis_url or settings.clustered:
        raise KitError("the redis-benchmark ceiling runs on the kit's own single Redis only (it makes an ACL user)",
                       "bench the Redis stacks in the single topology, without QUEUEKIT_REDIS_URL")
    client, tag = connect(settings), uuid.uuid4().hex[:6]
    user, stream = f"qk-bench-{tag}", f"{settings.redis_prefix}bench:tool:{tag}"
    # nopass: redis-benchmark would show a password in the process list. Nothing but these two commands on this
    # one key (no CONFIG GET: the tool says it could not fetch the config, and goes on).
    client.acl_setuser(user, enabled=True, nopass=True, commands=["+xadd", "+xreadgroup", "+ping"], keys=[stream])
    url = urlsplit(settings.redis_url)
    common = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379), "--user", user, "-a", "nopass",
              "-c", str(clients), "-n", str(records), "-P", "1", "--csv"]

    def rate(*command: str) -> float:
        done = subprocess.run([tool, *common, *command], capture_output=True, text=True, timeout=600)
        rows = [line for line in done.stdout.splitlines() if line.startswith('"') and not line.startswith('"test"')]
        if done.returncode != 0 or not rows:
            raise KitError(f"redis-benchmark failed: {(done.stdout + done.stderr).strip()[-300:]}", "see above")
        return float(rows[-1].split(",")[1].strip('"'))

    try:
        client.xgroup_create(stream, "g", id="0", mkstream=True)
        publish_rate = rate("XADD", stream, "*", "envelope", "x" * size)
        filled = client.xlen(stream)
        consume_rate = rate("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", stream, ">")
    finally:
        client.acl_deluser(user)
        client.unlink(stream)
        client.close()
    return {"tool": f"redis-benchmark {_redis_version()}", "publish_rate": publish_rate, "rate": consume_rate,
            "records": filled, "args": " ".join(common[4:6] + common[8:]) + " (user without password, one stream)"}


def _redis_version() -> str:
    done = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True)
    return _found(r"redis-benchmark ([\d.]+)", done.stdout + done.stderr)


def ceilings(settings: Settings, *, slots: int, prefetch: int, size: int, seconds: int, records: int,
             say: Callable[[str], None], backlog: int = 100_000, min_seconds: float = 10.0,
             redis: bool = False) -> dict[str, Any]:
    say(f"ceiling: RabbitMQ PerfTest, {backlog} x {size} B published first, then {slots} consumers "
        f"(prefetch {prefetch}) drain it for {seconds} s")
    libs = resolve(settings, "perftest", say)
    rabbit = perftest(settings, libs, consumers=slots, prefetch=prefetch, size=size, seconds=seconds, backlog=backlog)
    if not rabbit["outlasted"]:  # ran dry: once more with a backlog for ~1.5x the drain at the rate seen
        bigger = max(2 * backlog, int(rabbit["rate"] * seconds * 1.5))
        say(f"ceiling: PerfTest's {backlog}-message backlog ran out within {seconds} s; again with {bigger}")
        rabbit = perftest(settings, libs, consumers=slots, prefetch=prefetch, size=size, seconds=seconds,
                          backlog=bigger)
    if not rabbit["outlasted"]:
        say(f"ceiling: PerfTest's backlog ran out within {seconds} s again: its rate is a floor")
    say(f"ceiling: Kafka ProducerPerformance + ConsumerPerformance, {records} x {size} B, {slots} partitions"
        f"{f', read for at least {min_seconds:g} s after the join' if min_seconds else ''}")
    kafka = kafka_perf(settings, resolve(settings, "kafka-tools", say), partitions=slots, size=size, records=records,
                       min_seconds=min_seconds)
    out = {"rabbitmq": rabbit, "kafka": kafka}
    if redis:  # only when a stack on Redis is benched
        n = min(records, 200_000)
        say(f"ceiling: redis-benchmark, {n} XADDs of {size} B from {slots} clients, then {n} XREADGROUP NOACK")
        out["redis"] = redis_benchmark(settings, clients=slots, size=size, records=n)
    return out
