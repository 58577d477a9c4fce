"""Where the brokers are and how to reach them: one place, read from the environment.

Every endpoint and credential the kit uses comes from here, so a user points
the whole kit at their own cluster with environment variables alone:

  QUEUEKIT_HOME              state, logs and pid files   (~/.cache/queuekit)
  QUEUEKIT_BROKERS           local (default) | docker | external
  QUEUEKIT_AMQP_URL          an external RabbitMQ; the kit never starts/stops it
  QUEUEKIT_RABBIT_MGMT_URL   its management API   (http://127.0.0.1:15672)
  QUEUEKIT_KAFKA_BOOTSTRAP   external Kafka bootstrap servers
  QUEUEKIT_RABBIT_USER / QUEUEKIT_RABBIT_PASSWORD   (queuekit / queuekit)
  QUEUEKIT_FLOWER_USER / QUEUEKIT_FLOWER_PASSWORD   (queuekit / queuekit)
  QUEUEKIT_PORT_OFFSET       added to every port below (run a second kit beside the first)
  KAFKA_HOME                 an existing Kafka install to run instead of Maven jars
  QUEUEKIT_TOPOLOGY          single (default) | cluster: 3 RabbitMQ + 3 Kafka nodes, each in a
                             network namespace of its own (queuekit/brokers/netlab.py)

Default ports: AMQP 5672, management 15672, stream 5552, Erlang distribution
25672, RabbitMQ Prometheus 15692, Kafka 9092 (controller 9093), Flower 5555,
the dashboard 8050; epmd stays on 4369.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

LOOPBACK = "127.0.0.1"  # every broker the kit starts binds here, never 0.0.0.0
CLUSTER_SIZE = 3
TOPOLOGIES = ("single", "cluster")


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
    ports: Ports = field(default_factory=Ports)
    topology: str = "single"  # single | cluster

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("QUEUEKIT_HOME", str(Path.home() / ".cache" / "queuekit")))
        kafka_home = os.environ.get("KAFKA_HOME")
        offset = int(_env("QUEUEKIT_PORT_OFFSET", "0"))
        return cls(
            home=home,
            mode=_env("QUEUEKIT_BROKERS", "local"),
            rabbit_user=_env("QUEUEKIT_RABBIT_USER", "queuekit"),
            rabbit_password=_env("QUEUEKIT_RABBIT_PASSWORD", "queuekit"),
            flower_user=_env("QUEUEKIT_FLOWER_USER", "queuekit"),
            flower_password=_env("QUEUEKIT_FLOWER_PASSWORD", "queuekit"),
            external_amqp_url=os.environ.get("QUEUEKIT_AMQP_URL"),
            external_mgmt_url=os.environ.get("QUEUEKIT_RABBIT_MGMT_URL"),
            external_kafka_bootstrap=os.environ.get("QUEUEKIT_KAFKA_BOOTSTRAP"),
            kafka_home=Path(kafka_home) if kafka_home else None,
            port_offset=offset,
            ports=Ports.offset_by(offset),
            topology=_env("QUEUEKIT_TOPOLOGY", "single"),
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
        return [f"amqp://{user}:{pw}@{host}:{self.ports.amqp}//" for host in self.node_addresses("rabbitmq")]

    @property
    def pika_urls(self) -> list[str]:
        return [f"{u.rsplit('/', 2)[0]}/{quote(self.vhost, safe='')}" for u in self.amqp_urls]

    @property
    def mgmt_urls(self) -> list[str]:
        if self.external_amqp_url or not self.clustered:
            return [self.mgmt_url]
        return [f"http://{host}:{self.ports.rabbit_mgmt}" for host in self.node_addresses("rabbitmq")]

    # -- endpoints every part of the kit uses ---------------------------------
    @property
    def amqp_url(self) -> str:
        if self.external_amqp_url:
            return self.external_amqp_url
        user, pw = quote(self.rabbit_user, safe=""), quote(self.rabbit_password, safe="")
        host = self.node_address("rabbitmq", 0) if self.clustered else LOOPBACK
        return f"amqp://{user}:{pw}@{host}:{self.ports.amqp}//"

    @property
    def vhost(self) -> str:
        """The virtual host in the AMQP URL (kombu spells the default one ``//``)."""
        path = urlsplit(self.amqp_url).path
        return "/" if path in ("", "/", "//") else unquote(path[1:])

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
        if self.external_amqp_url:
            host = urlsplit(self.external_amqp_url).hostname or LOOPBACK
            return f"http://{host}:{self.ports.rabbit_mgmt}"
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
        """Private state of the brokers the kit starts (data, logs, pid files)."""
        return self.home / ("run" if not self.port_offset else f"run-{self.port_offset}")

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def cache_dir(self) -> Path:
        """Provisioned artifacts (Kafka jars), reused across runs and clones."""
        return self.home / "cache"


def settings() -> Settings:
    return Settings.from_env()
