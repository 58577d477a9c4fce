"""Where the brokers are and how to reach them: one place, read from the environment.

Every endpoint and credential the kit uses comes from here, so a user points
the whole kit at their own cluster with environment variables alone:

  QUEUEKIT_HOME              state, logs and pid files   (~/.cache/queuekit)
  QUEUEKIT_BROKERS           local (default) | docker | external
  QUEUEKIT_AMQP_URL          an external RabbitMQ; the kit never starts/stops it
  QUEUEKIT_RABBIT_MGMT_URL   its management API   (http://127.0.0.1:15672)
  QUEUEKIT_RABBIT_STREAM_PORT  its stream protocol port (5552)
  QUEUEKIT_KAFKA_BOOTSTRAP   external Kafka bootstrap servers
  QUEUEKIT_RABBIT_VHOST      the kit's vhost: "/" on its own broker, "queuekit" on an external one
                             (unless the URL names one); created when the user has the rights
  QUEUEKIT_KAFKA_PREFIX      prefix of the kit's topics and groups ("qk."); give each kit its own
                             on a shared cluster
  QUEUEKIT_RESET_DEAD_LETTERS=1  let reset delete an external broker's dead letters that hold messages
  QUEUEKIT_RABBIT_USER / QUEUEKIT_RABBIT_PASSWORD   (queuekit / generated per install)
  QUEUEKIT_FLOWER_USER / QUEUEKIT_FLOWER_PASSWORD   (queuekit / generated per install)
  QUEUEKIT_PORT_OFFSET       added to every port below (run a second kit beside the first)
  KAFKA_HOME                 an existing Kafka install to run instead of Maven jars
  QUEUEKIT_TOPOLOGY          single (default) | cluster: 3 RabbitMQ + 3 Kafka nodes, each in a
                             network namespace of its own (queuekit/brokers/netlab.py)
  QUEUEKIT_RABBITMQ_VERSION  3.10 (default: the host's Debian 12 package) | 4.0 | 4.3 | 4 (the newest
                             4.x): 4.x runs from a Debian root the kit builds (brokers/rabbitmq_root.py)

Credentials not set in the environment are generated once per install (random passwords) and
kept in ``$QUEUEKIT_HOME/credentials.json``, mode 0600, in a directory of mode 0700
(``queuekit credentials`` shows them).

Default ports: AMQP 5672, management 15672, stream 5552, Erlang distribution
25672, RabbitMQ Prometheus 15692, Kafka 9092 (controller 9093), Flower 5555,
the dashboard 8050; epmd stays on 4369.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

LOOPBACK = "127.0.0.1"  # every broker the kit starts binds here, never 0.0.0.0
CLUSTER_SIZE = 3
TOPOLOGIES = ("single", "cluster")
CREDENTIALS_FILE = "credentials.json"
PRIVATE_DIR = 0o700  # QUEUEKIT_HOME and the run directories: state, logs, configs with secrets
PRIVATE_FILE = 0o600  # credentials, rabbitmq.conf


def private_dir(path: Path) -> Path:
    """``path`` created if needed, readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from the first byte (no window at 0644)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(text)


def install_credentials(home: Path) -> dict[str, str]:
    """This install's generated credentials: read, or created once (random) under ``home``, mode 0600."""
    path = home / CREDENTIALS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    private_dir(home)
    creds = {"rabbit_user": "queuekit", "rabbit_password": secrets.token_urlsafe(24),
             "flower_user": "queuekit", "flower_password": secrets.token_urlsafe(24)}
    staging = home / f".{CREDENTIALS_FILE}.{os.getpid()}"
    write_private(staging, json.dumps(creds, indent=2) + "\n")
    try:
        os.link(staging, path)  # atomic, and fails if another process created it first: theirs wins
    except FileExistsError:
        creds = json.loads(path.read_text())
    finally:
        staging.unlink(missing_ok=True)
    return creds


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Ports:
    amqp: int = 5672
    rabbit_mgmt: int = 15672
    rabbit_stream: int = 5552
    rabbit_dist: int = 25672
    kafka: int = 9092
    kafka_controller: int = 9093
    flower: int = 5555
    rabbit_prometheus: int = 15692  # RabbitMQ's rabbitmq_prometheus plugin: /metrics
    dashboard: int = 8050  # queuekit dashboard
    epmd: int = 4369  # shared by every Erlang node on the machine; not offset

    @classmethod
    def offset_by(cls, offset: int) -> Ports:
        base = cls()
        return cls(**{name: value + offset for name, value in vars(base).items() if name != "epmd"})


@dataclass(frozen=True)
class Settings:
    home: Path
    mode: str  # local | docker | external
    rabbit_user: str
    rabbit_password: str
    flower_user: str
    flower_password: str
    external_amqp_url: str | None
    external_mgmt_url: str | None
    external_kafka_bootstrap: str | None
    kafka_home: Path | None
    port_offset: int = 0
    rabbit_vhost: str | None = None  # QUEUEKIT_RABBIT_VHOST
    ports: Ports = field(default_factory=Ports)
    topology: str = "single"  # single | cluster
    rabbitmq_version: str = "3.10"  # QUEUEKIT_RABBITMQ_VERSION: the kit's own RabbitMQ node(s)

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("QUEUEKIT_HOME", str(Path.home() / ".cache" / "queuekit")))
        kafka_home = os.environ.get("KAFKA_HOME")
        offset = int(_env("QUEUEKIT_PORT_OFFSET", "0"))
        generated = {}
        if not all(os.environ.get(f"QUEUEKIT_{n}") for n in ("RABBIT_USER", "RABBIT_PASSWORD", "FLOWER_USER",
                                                            "FLOWER_PASSWORD")):
            generated = install_credentials(home)
        return cls(
            home=home,
            mode=_env("QUEUEKIT_BROKERS", "local"),
            rabbit_user=_env("QUEUEKIT_RABBIT_USER", generated.get("rabbit_user", "")),
            rabbit_password=_env("QUEUEKIT_RABBIT_PASSWORD", generated.get("rabbit_password", "")),
            flower_user=_env("QUEUEKIT_FLOWER_USER", generated.get("flower_user", "")),
            flower_password=_env("QUEUEKIT_FLOWER_PASSWORD", generated.get("flower_password", "")),
            external_amqp_url=os.environ.get("QUEUEKIT_AMQP_URL"),
            external_mgmt_url=os.environ.get("QUEUEKIT_RABBIT_MGMT_URL"),
            external_kafka_bootstrap=os.environ.get("QUEUEKIT_KAFKA_BOOTSTRAP"),
            kafka_home=Path(kafka_home) if kafka_home else None,
            rabbit_vhost=os.environ.get("QUEUEKIT_RABBIT_VHOST") or None,
            port_offset=offset,
            ports=Ports.offset_by(offset),
            topology=_env("QUEUEKIT_TOPOLOGY", "single"),
            rabbitmq_version=_env("QUEUEKIT_RABBITMQ_VERSION", "3.10"),
        )

    # -- the cluster topology: one private /24 per kit, one address per node --------
    @property
    def clustered(self) -> bool:
        return self.topology == "cluster"

    @property
    def cluster_subnet(self) -> str:
        """198.18.0.0/15 is reserved for benchmarking (RFC 2544): never routed, never anyone's host."""
        index = (self.port_offset // 100) % 512  # kits beside each other get different /24s
        return f"198.{18 + index // 256}.{index % 256}"

    def node_address(self, broker: str, index: int) -> str:
        """The address of node ``index`` (0-based) of ``broker``: .11-.13 RabbitMQ, .21-.23 Kafka."""
        return f"{self.cluster_subnet}.{(11 if broker == 'rabbitmq' else 21) + index}"

    def node_addresses(self, broker: str) -> list[str]:
        return [self.node_address(broker, i) for i in range(CLUSTER_SIZE)]

    @property
    def amqp_urls(self) -> list[str]:
        """Every node's AMQP URL: kombu's failover list (``;``-joined) / pika's parameter list."""
        if self.external_amqp_url or not self.clustered:
            return [self.amqp_url]
        user, pw = quote(self.rabbit_user, safe=""), quote(self.rabbit_password, safe="")
        vhost = "/" if self.vhost == "/" else quote(self.vhost, safe="")
        return [f"amqp://{user}:{pw}@{host}:{self.ports.amqp}/{vhost}" for host in self.node_addresses("rabbitmq")]

    @property
    def pika_urls(self) -> list[str]:
        vhost = quote(self.vhost, safe="")  # pika wants the vhost percent-encoded ("/" is %2F)
        return [f"{p.scheme}://{p.netloc}/{vhost}" for p in map(urlsplit, self.amqp_urls)]

    @property
    def mgmt_urls(self) -> list[str]:
        if self.external_amqp_url or not self.clustered:
            return [self.mgmt_url]
        return [f"http://{host}:{self.ports.rabbit_mgmt}" for host in self.node_addresses("rabbitmq")]

    # -- endpoints every part of the kit uses ---------------------------------
    def external(self, broker: str) -> bool:
        """Is ``broker`` ("rabbitmq" | "kafka") someone else's, which the kit only uses?"""
        named = self.external_amqp_url if broker == "rabbitmq" else self.external_kafka_bootstrap
        return self.mode != "local" or bool(named)

    @property
    def amqp_url(self) -> str:
        """The broker URL with the kit's vhost in it (kombu spells the default vhost ``//``)."""
        if self.external_amqp_url:
            parts = urlsplit(self.external_amqp_url)
            return f"{parts.scheme}://{parts.netloc}/{quote(self.vhost, safe='')}"
        user, pw = quote(self.rabbit_user, safe=""), quote(self.rabbit_password, safe="")
        host = self.node_address("rabbitmq", 0) if self.clustered else LOOPBACK
        vhost = "/" if self.vhost == "/" else quote(self.vhost, safe="")
        return f"amqp://{user}:{pw}@{host}:{self.ports.amqp}/{vhost}"

    @property
    def vhost(self) -> str:
        """The kit's virtual host: QUEUEKIT_RABBIT_VHOST; else the external URL's, if it names one other
        than the default; else "queuekit" on an external broker (its own namespace), "/" on the kit's own."""
        if self.rabbit_vhost:
            return self.rabbit_vhost
        if self.external_amqp_url:
            path = urlsplit(self.external_amqp_url).path
            return "queuekit" if path in ("", "/", "//") else unquote(path[1:])
        return "/"

    @property
    def rabbit_stream_port(self) -> int:
        """The stream protocol port: the kit's own (offset) port, or on an external broker
        QUEUEKIT_RABBIT_STREAM_PORT / the plugin's default 5552 (never a guessed local offset port)."""
        if self.external_amqp_url:
            return int(os.environ.get("QUEUEKIT_RABBIT_STREAM_PORT") or 5552)
        return self.ports.rabbit_stream

    @property
    def amqp_address(self) -> tuple[str, int]:
        """Host and port of the AMQP URL: what readiness checks probe (never a guessed local port)."""
        parts = urlsplit(self.amqp_url)
        return parts.hostname or LOOPBACK, parts.port or 5672

    @property
    def pika_url(self) -> str:
        """The same broker for pika, which wants the vhost percent-encoded."""
        parts = urlsplit(self.amqp_url)
        return f"{parts.scheme}://{parts.netloc}/{quote(self.vhost, safe='')}"

    @property
    def mgmt_url(self) -> str:
        """The RabbitMQ management API base, without credentials."""
        if self.external_mgmt_url:
            return self.external_mgmt_url.rstrip("/")
        if self.external_amqp_url:  # the management plugin's default port: offsets are for the kit's own brokers
            host = urlsplit(self.external_amqp_url).hostname or LOOPBACK
            return f"http://{host}:15672"
        return self.mgmt_urls[0] if self.clustered else f"http://{LOOPBACK}:{self.ports.rabbit_mgmt}"

    @property
    def mgmt_auth(self) -> tuple[str, str]:
        if self.external_amqp_url:
            parts = urlsplit(self.external_amqp_url)
            return (parts.username or "guest", parts.password or "guest")
        return (self.rabbit_user, self.rabbit_password)

    @property
    def kafka_bootstrap(self) -> str:
        if self.external_kafka_bootstrap:
            return self.external_kafka_bootstrap
        if self.clustered:  # every node: a client bootstraps from whichever answers
            return ",".join(f"{host}:{self.ports.kafka}" for host in self.node_addresses("kafka"))
        return f"{LOOPBACK}:{self.ports.kafka}"

    @property
    def flower_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.flower}"

    @property
    def flower_auth(self) -> tuple[str, str]:
        return (self.flower_user, self.flower_password)

    @property
    def run_dir(self) -> Path:
        """Private state of the brokers the kit starts (data, logs, pid files); mode 0700 once created."""
        return self.home / ("run" if not self.port_offset else f"run-{self.port_offset}")

    @property
    def credentials_file(self) -> Path:
        return self.home / CREDENTIALS_FILE

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def cache_dir(self) -> Path:
        """Provisioned artifacts (Kafka jars, RabbitMQ 4.x roots), reused across runs and clones."""
        return self.home / "cache"


def settings() -> Settings:
    return Settings.from_env()
