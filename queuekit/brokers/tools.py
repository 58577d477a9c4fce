"""The brokers' own command-line tools, pointed at the kit's brokers (``queuekit tool NAME ARGS…``).

RabbitMQ's CLI tools talk Erlang distribution to the node: they need its name
(``queuekit<offset>@localhost``) and its Erlang cookie, which lives in the
kit's private HOME; plain ``rabbitmqctl`` finds neither. Kafka's tools are
Java classes in ``kafka-tools`` (not in the broker's jars): resolved from
Maven Central once (``kafka.resolve_tools``) and run with
``--bootstrap-server`` filled in. ``rabbitmqadmin`` (the management API's own
CLI, served by the node) gets host, port and credentials; kcat gets ``-b``.
Whatever the user passes comes after, so it can override nothing it need not.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from queuekit.core.config import Settings
from queuekit.core.errors import KitError

from .base import Say
from .kafka import JAVA_FIX, Kafka, require, resolve_tools
from .rabbitmq import RabbitMQ

RABBIT_TOOLS = ("rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-queues", "rabbitmq-streams", "rabbitmq-plugins")
# name -> main class, as Kafka's bin/*.sh scripts run them (Kafka 4.x)
KAFKA_TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-share-groups": "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-share-consumer": "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-groups": "org.apache.kafka.tools.GroupsCommand",
}
OTHER_TOOLS = ("rabbitmqadmin", "kcat")
NAMES = (*RABBIT_TOOLS, *KAFKA_TOOLS, *OTHER_TOOLS)

TOOLS_LOG4J2 = """\
Configuration:
  Appenders:
    File: {{name: tools, fileName: "{log}", PatternLayout: {{pattern: "[%d] %p %m (%c)%n"}}}}
  Loggers:
    Root: {{level: WARN, AppenderRef: [{{ref: tools}}]}}
"""


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str] | None = None  # None: the caller's environment
    shown: str = ""  # what is printed (secrets masked)


def invocation(settings: Settings, name: str, args: tuple[str, ...], say: Say = lambda _: None) -> Invocation:
    """The real tool's command line with the kit's node, cookie, bootstrap servers and credentials."""
    if name in RABBIT_TOOLS:
        if settings.external_amqp_url or settings.mode != "local":
            raise KitError(f"{name} needs the node's Erlang cookie, which only a kit-started RabbitMQ has here",
                           "run it on the broker's host, or use: queuekit tool rabbitmqadmin …")
        rabbit = RabbitMQ(settings)
        argv = rabbit.command(name, "-n", rabbit.node, *args)  # -n: the kit's node; HOME: its cookie; 4.x: its root's CLI
        return Invocation(argv, rabbit._env(), " ".join([name, "-n", rabbit.node, *args]))
    if name in KAFKA_TOOLS:
        libs = resolve_tools(settings, say)
        log = Kafka(settings).dir / "logs" / "tools.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        config = log.with_name("tools-log4j2.yaml")
        config.write_text(TOOLS_LOG4J2.format(log=log))  # client logs to a file: the terminal gets the output
        java = require("java", JAVA_FIX)
        tail = ["--bootstrap-server", settings.kafka_bootstrap, *args]
        argv = [java, "-Xmx256m", f"-Dlog4j2.configurationFile={config}", "-cp", f"{libs}/*", KAFKA_TOOLS[name], *tail]
        return Invocation(argv, None, " ".join([name, *tail]))
    if name == "kcat":
        kcat = require("kcat", "install it: apt-get install -y kcat")
        tail = ["-b", settings.kafka_bootstrap, *args]
        return Invocation([kcat, *tail], None, " ".join(["kcat", *tail]))
    if name == "rabbitmqadmin":
        script = _rabbitmqadmin(settings)
        url = urlsplit(settings.mgmt_url)
        user, password = settings.mgmt_auth
        kit = ["--host", url.hostname or "127.0.0.1", "--port", str(url.port or 15672), "--username", user]
        argv = [sys.executable, str(script), *kit, "--password", password, *args]
        return Invocation(argv, None, " ".join(["rabbitmqadmin", *kit, "--password", "***", *args]))
    raise KitError(f"unknown tool {name!r}", f"choose from {', '.join(NAMES)}")


def _rabbitmqadmin(settings: Settings) -> Path:
    """The management plugin serves its own CLI at /cli/rabbitmqadmin: fetched once per broker version."""
    r = httpx.get(f"{settings.mgmt_url}/cli/rabbitmqadmin", timeout=10)
    r.raise_for_status()
    path = settings.run_dir / "rabbitmqadmin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(r.content)
    return path


def available() -> dict[str, str]:
    """Tool -> what it is, for ``queuekit tool`` without arguments."""
    out = {n: "RabbitMQ CLI (node + cookie)" for n in RABBIT_TOOLS}
    out |= {n: f"Kafka tools ({cls.rsplit('.', 1)[1]})" for n, cls in KAFKA_TOOLS.items()}
    out["rabbitmqadmin"] = "RabbitMQ management API CLI (host, port, credentials)"
    out["kcat"] = "kcat (bootstrap servers)" + ("" if shutil.which("kcat") else " — not installed: apt-get install kcat")
    return out
