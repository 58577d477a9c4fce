"""Apache Kafka in KRaft mode (combined broker + controller, one node), from Maven Central.

The broker's jars are resolved by ``mvn dependency:copy-dependencies`` on
``kafka-pom.xml`` (which pins the version) into ``$QUEUEKIT_HOME/cache``,
outside the work tree, once. Or, when KAFKA_HOME names an existing install,
its ``libs/`` are used instead. Then ``kafka.tools.StorageTool format`` runs
once for the data directory and ``kafka.Kafka server.properties`` starts it.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from queuekit.core.config import LOOPBACK, Settings
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for

from .base import Say, Status
from .process import ManagedProcess, elapsed, ensure_ports_free, wait_ports_free

POM = Path(__file__).with_name("kafka-pom.xml")
HEAP = os.environ.get("QUEUEKIT_KAFKA_HEAP", "-Xms256m -Xmx768m")
READY_TIMEOUT = 120.0
JAVA_FIX = "install a Java 17+ runtime: apt-get install -y openjdk-17-jre-headless"


def pinned_version() -> str:
    """The Kafka version, read from the one place it is pinned: kafka-pom.xml."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(POM).getroot().find("m:properties/m:kafka.version", ns)
    if version is None or not version.text:
        raise KitError(f"{POM} pins no kafka.version")
    return version.text.strip()


def require(tool: str, fix: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise KitError(f"'{tool}' was not found on PATH", fix)
    return path


def resolve_jars(settings: Settings, say: Say) -> tuple[Path, str]:
    """The directory of broker jars and the Kafka version they are."""
    if settings.kafka_home:
        libs = settings.kafka_home / "libs"
        found = sorted(libs.glob("kafka_2.*-*.jar"))
        if not found:
            raise KitError(f"KAFKA_HOME={settings.kafka_home} has no libs/kafka_2.*.jar",
                           "point KAFKA_HOME at an unpacked Apache Kafka, or unset it to use Maven Central")
        version = re.sub(r"^kafka_2\.\d+-|(-test|-sources)?\.jar$", "", found[-1].name)
        return libs, version
    return _resolve(settings, say, "libs"), pinned_version()


def resolve_tools(settings: Settings, say: Say) -> Path:
    """The directory of Kafka's command-line tools' jars (kafka-tools, same version as the broker, with
    its dependencies): ``kafka-pom.xml``'s ``tools`` profile, cached beside the broker's ``libs``.
    With KAFKA_HOME, its ``libs/`` (a Kafka tarball ships the tools)."""
    if settings.kafka_home:
        return resolve_jars(settings, say)[0]
    return _resolve(settings, say, "tools", "-P", "tools")


def _resolve(settings: Settings, say: Say, into: str, *mvn_args: str) -> Path:
    """``mvn dependency:copy-dependencies`` on kafka-pom.xml into ``$QUEUEKIT_HOME/cache/kafka-<v>/<into>``, once."""
    require("java", JAVA_FIX)  # Maven and the broker both need it: say so first
    version = pinned_version()
    libs = settings.cache_dir / f"kafka-{version}" / into
    if (libs / ".complete").exists():
        return libs
    mvn = require("mvn", "install Maven: apt-get install -y maven (or set KAFKA_HOME to an existing Kafka)")
    say(f"resolving Kafka {version} {into} jars from Maven Central into {libs} (first run only)…")
    staging = libs.with_name(f"{into}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    done = subprocess.run(
        [mvn, "-B", "-q", "-f", str(POM), *mvn_args, "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        capture_output=True, text=True)
    if done.returncode != 0:
        last = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line][:1] or ["no output"]
        raise KitError(f"Maven could not resolve Kafka {version} {into}: {last[0].strip()[:200]}",
                       "check that Maven Central is reachable, or set KAFKA_HOME to an existing Kafka")
    (staging / ".complete").write_text(version)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)  # atomic: a half-resolved cache is never used
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's own ``Uuid.randomUuid`` makes them: 22 URL-safe base64 characters, never
    starting with "-" (StorageTool's argument parser takes ``-t -abc…`` for an option: "expected one argument",
    about one ``queuekit up`` in 64 before this)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.run_dir / "kafka"
        self.proc = ManagedProcess("kafka", self.dir)

    def _server_properties(self) -> Path:
        p = self.settings.ports
        props = {
            "process.roles": "broker,controller",  # KRaft combined mode: no ZooKeeper
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{p.kafka_controller}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{p.kafka},CONTROLLER://{LOOPBACK}:{p.kafka_controller}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{p.kafka}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "3",
            # One node: the internal topics must not ask for replicas that cannot exist,
            # or consumer groups and transactions never become available.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Share groups (kafka_share): let a group ask for a short record lock, session and heartbeat
            # (broker floors 15 s / 45 s / 5 s) so a SIGKILLed member's records and partitions come back
            # in seconds; each group sets its own values (kafka_share_app/admin.py).
            "group.share.min.record.lock.duration.ms": "1000",
            "group.share.min.session.timeout.ms": "2000",
            "group.share.min.heartbeat.interval.ms": "500",
            # A group's first rebalance starts at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            # Let consumers ask for short session timeouts (default floor 6 s) so a SIGKILLed
            # member is noticed in ~2 s and the crash / long-task scenarios run in seconds.
            "group.min.session.timeout.ms": "1000",
            "auto.create.topics.enable": "false",  # topics are declared by the stacks, explicitly
        }
        path = self.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.dir / "log4j2.yaml").write_text(LOG4J2.format(logs=self.dir / "logs"))
        return path

    def _java(self, libs: Path, main: str, *args: str, heap: str = "-Xmx256m") -> list[str]:
        java = require("java", JAVA_FIX)
        return [java, *heap.split(), "-Dlog4j2.configurationFile=" + str(self.dir / "log4j2.yaml"),
                "-Dkafka.logs.dir=" + str(self.dir / "logs"), "-cp", f"{libs}/*", main, *args]

    def admin(self):
        from confluent_kafka.admin import AdminClient  # lazy: the CLI starts fast

        # log_level 0: polling a broker that is still starting is expected to be refused.
        return AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0})

    def ready(self) -> bool:
        return bool(self.admin().list_topics(timeout=2).brokers)  # a metadata round trip

    def status(self) -> Status:
        pid = self.proc.pid()
        url = f"kafka://{self.settings.kafka_bootstrap}"
        version = (self.dir / "version").read_text().strip() if (self.dir / "version").exists() else None
        try:
            healthy = self.ready()
            return Status(self.name, url, "kit" if pid else "unmanaged", healthy, pid, version)
        except Exception as exc:  # noqa: BLE001 - any client error means "not healthy"
            return Status(self.name, url, "kit" if pid else "stopped", False, pid, version, str(exc)[:120])

    def start(self, say: Say) -> bool:
        if self.proc.pid() is not None:
            wait_for(self.ready, timeout=READY_TIMEOUT, what="Kafka (already started) to answer metadata")
            return False
        libs, version = resolve_jars(self.settings, say)
        p = self.settings.ports
        ensure_ports_free(LOOPBACK, {"Kafka": p.kafka, "KRaft controller": p.kafka_controller},
                          "point the kit at that broker with QUEUEKIT_KAFKA_BOOTSTRAP")
        self.dir.mkdir(parents=True, exist_ok=True)
        props = self._server_properties()
        if not (self.dir / "data" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            done = subprocess.run(self._java(libs, "kafka.tools.StorageTool", "format",
                                             "-t", cluster_id, "-c", str(props)),
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise KitError(f"kafka StorageTool format failed: {done.stderr.strip()[-200:]}",
                               f"remove {self.dir / 'data'} and run queuekit up again")
        (self.dir / "version").write_text(version)
        t0 = time.monotonic()
        say(f"starting Kafka {version} (KRaft, one node) in {self.dir}…")
        self.proc.spawn(self._java(libs, "kafka.Kafka", str(props), heap=HEAP))
        self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT,
                             what=f"Kafka to answer a metadata request on {self.settings.kafka_bootstrap}")
        say(f"Kafka ready in {elapsed(t0)}")
        return True

    def kill(self, say: Say) -> bool:
        """SIGKILL the JVM (no controlled shutdown: the next start recovers the log segments) and wait until
        its ports are free. Kafka never fsyncs per write (``log.flush.interval.messages`` unset): what it
        acknowledged sits in the page cache, which a process kill does not lose (a power cut would)."""
        if self.proc.pid() is None:
            return False
        self.proc.kill("Kafka")
        p = self.settings.ports
        wait_ports_free(LOOPBACK, {"Kafka": p.kafka, "KRaft controller": p.kafka_controller}, "the killed Kafka")
        say("Kafka killed (SIGKILL)")
        return True

    def stop(self, say: Say) -> bool:
        if self.proc.stop(timeout=60):  # SIGTERM: controlled shutdown, the log is flushed
            say("Kafka stopped")
            return True
        return False



LOG4J2 = """\
Configuration:
  Appenders:
    RollingFile:
      name: server
      fileName: "{logs}/server.log"
      filePattern: "{logs}/server.log.%i"
      PatternLayout: {{pattern: "[%d] %p %m (%c)%n"}}
      Policies: {{SizeBasedTriggeringPolicy: {{size: 20MB}}}}
      DefaultRolloverStrategy: {{max: 2}}
  Loggers:
    Root: {{level: INFO, AppenderRef: [{{ref: server}}]}}
"""
