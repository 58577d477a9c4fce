"""The brokers' own command-line tools, pointed at the kit's brokers (``queuekit tool NAME ARGS…``).

RabbitMQ's CLI tools talk Erlang distribution to the node: they need its name
(``queuekit<offset>@localhost``) and its Erlang cookie, which lives in the
kit's private HOME; plain ``rabbitmqctl`` finds neither. Kafka's tools are
Java classes in ``kafka-tools`` (not in the broker's jars): resolved from
Maven Central once (``kafka.resolve_tools``) and run with
``--bootstrap-server`` filled in. ``rabbitmqadmin`` (the management API's own
CLI, the one Debian's rabbitmq-server ships; never one downloaded and run) gets
host, port, vhost and credentials through its own config file (0600, ``-c``),
never on its command line; kcat gets ``-b``; ``redis-cli`` gets host, port and user,
and the password through the REDISCLI_AUTH environment variable (never on its command line).
Whatever the user passes comes after, so it can override nothing it need not.
"""
from __future__ import annotations

import configparser
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from queuekit.core.config import Settings, private_dir, write_private
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
OTHER_TOOLS = ("rabbitmqadmin", "kcat", "redis-cli")
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
        script = require("rabbitmqadmin", "install it: apt-get install -y rabbitmq-server (Debian ships "
                                          "/usr/bin/rabbitmqadmin); the kit never downloads a script to run")
        config = _rabbitmqadmin_config(settings)
        kit = ["--config", str(config), "--node", "default"]  # host, port, vhost and credentials: in the file
        return Invocation([script, *kit, *args], None, " ".join(["rabbitmqadmin", *kit, *args]))
    if name == "redis-cli":
        return _redis_cli(settings, args)
    raise KitError(f"unknown tool {name!r}", f"choose from {', '.join(NAMES)}")


def _redis_cli(settings: Settings, args: tuple[str, ...]) -> Invocation:
    """redis-cli at the kit's Redis (its primary, asked of the Sentinels, in the cluster topology)."""
    import os

    from queuekit.core.redis_client import SERVICE, sentinel

    cli = require("redis-cli", "install it: apt-get install -y redis-tools")
    url = urlsplit(settings.redis_url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    if settings.clustered and not settings.external_redis_url:
        found = sentinel(settings).discover_master(SERVICE)
        host, port = found[0], int(found[1])
    kit = ["-h", host, "-p", str(port), "-n", (url.path or "/0").lstrip("/") or "0"]
    if url.username:
        kit += ["--user", unquote(url.username)]
    env = {**os.environ, **({"REDISCLI_AUTH": unquote(url.password)} if url.password else {})}
    return Invocation([cli, *kit, *args], env, " ".join(["redis-cli", *kit, *args]))


def _rabbitmqadmin_config(settings: Settings) -> Path:
    """rabbitmqadmin's own configuration file ([default] section), mode 0600 in the private run directory:
    the password never goes on a command line, where ``ps`` shows it to every user of the machine."""
    url = urlsplit(settings.mgmt_url)
    user, password = settings.mgmt_auth
    parser = configparser.ConfigParser(interpolation=None)
    parser["default"] = {"hostname": url.hostname or "127.0.0.1", "port": str(url.port or 15672),
                         "username": user, "password": password, "vhost": settings.vhost,
                         **({"ssl": "True"} if url.scheme == "https" else {})}
    text = io.StringIO()
    parser.write(text)
    path = private_dir(settings.run_dir) / "rabbitmqadmin.conf"
    write_private(path, text.getvalue())
    return path


def available() -> dict[str, str]:
    """Tool -> what it is, for ``queuekit tool`` without arguments."""
    out = {n: "RabbitMQ CLI (node + cookie)" for n in RABBIT_TOOLS}
    out |= {n: f"Kafka tools ({cls.rsplit('.', 1)[1]})" for n, cls in KAFKA_TOOLS.items()}
    out["rabbitmqadmin"] = "RabbitMQ management API CLI (host, port, vhost; credentials in a 0600 config file)" + (
        "" if shutil.which("rabbitmqadmin") else " — not installed: apt-get install rabbitmq-server")
    out["kcat"] = "kcat (bootstrap servers)" + ("" if shutil.which("kcat") else " — not installed: apt-get install kcat")
    out["redis-cli"] = "Redis CLI (host, port, user; password via REDISCLI_AUTH)"
    return out
