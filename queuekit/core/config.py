"""Where the brokers are and how to reach them: one place, read from the environment.

Every endpoint and credential the kit uses comes from here, so a user points
the whole kit at their own cluster with environment variables alone:

  QUEUEKIT_HOME              state, logs and pid files   (~/.cache/queuekit)
  QUEUEKIT_BROKERS           local (default) | docker | external
  QUEUEKIT_AMQP_URL          an external RabbitMQ; the kit never starts/stops it
  QUEUEKIT_RABBIT_MGMT_URL   its management API   (http://127.0.0.1:15672)
  QUEUEKIT_RABBIT_STREAM_PORT  its stream protocol port (5552)
  QUEUEKIT_KAFKA_BOOTSTRAP   external Kafka bootstrap servers
  QUEUEKIT_REDIS_URL         an external Redis (redis://user:pass@host:port/db); the kit keeps to its own
                             key prefix there and deletes only keys it recorded (core/redis_keys.py)
  QUEUEKIT_REDIS_PREFIX      that prefix (default "qk:<install id>:" on an external Redis, "qk:" on the kit's own)
  QUEUEKIT_RABBIT_VHOST      the kit's vhost: "/" on its own broker, "queuekit-<install id>" on an
                             external one (unless the URL names one); created when the user has the rights
  QUEUEKIT_KAFKA_PREFIX      prefix of the kit's topics and groups: "qk." on its own broker,
                             "qk-<install id>." on an external one (``kafka_prefix``)
  QUEUEKIT_RABBIT_USER / QUEUEKIT_RABBIT_PASSWORD   (queuekit / generated per install)
  QUEUEKIT_FLOWER_USER / QUEUEKIT_FLOWER_PASSWORD   (queuekit / generated per install)
  QUEUEKIT_REDIS_USER / QUEUEKIT_REDIS_PASSWORD     the kit's Redis ACL user (queuekit / generated per install)
  QUEUEKIT_PORT_OFFSET       added to every port below (run a second kit beside the first)
  KAFKA_HOME                 an existing Kafka install to run instead of Maven jars
  QUEUEKIT_TOPOLOGY          single (default) | cluster: 3 RabbitMQ + 3 Kafka nodes + Redis (primary,
                             2 replicas, 3 Sentinels), each node in a network namespace of its own
                             (queuekit/brokers/netlab.py)
  QUEUEKIT_RABBITMQ_VERSION  3.10 (default: the host's Debian 12 package) | 4.0 | 4.3 | 4 (the newest
                             4.x): 4.x runs from a Debian root the kit builds (brokers/rabbitmq_root.py)

The install id (``install_id``: 8 hex digits made once, kept in ``$QUEUEKIT_HOME/install-id``) names
this install's own namespace on an external broker, so two kits on one broker never share a vhost, a
topic or a group unless told to (an explicit vhost or prefix wins). What the kit creates there is
recorded in ``$QUEUEKIT_HOME/manifest.json`` (``queuekit.stacks.manifest``).

Credentials not set in the environment are generated once per install (random passwords) and
kept in ``$QUEUEKIT_HOME/credentials.json``, mode 0600, in a directory of mode 0700
(``queuekit credentials`` shows them).

Default ports: AMQP 5672, management 15672, stream 5552, Erlang distribution
25672, RabbitMQ Prometheus 15692, Kafka 9092 (controller 9093), Flower 5555,
the dashboard 8050, Redis 6379, Redis Sentinel 26379; epmd stays on 4369.
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
NODE_BASE = {"rabbitmq": 11, "kafka": 21, "redis": 31}  # last octet of each broker's first cluster node
CREDENTIALS_FILE = "credentials.json"
INSTALL_ID_FILE = "install-id"
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


CREDENTIAL_KEYS = ("rabbit_user", "rabbit_password", "flower_user", "flower_password", "redis_user", "redis_password")


def _new_credentials() -> dict[str, str]:
    return {"rabbit_user": "queuekit", "rabbit_password": secrets.token_urlsafe(24),
            "flower_user": "queuekit", "flower_password": secrets.token_urlsafe(24),
            "redis_user": "queuekit", "redis_password": secrets.token_urlsafe(24)}


def install_credentials(home: Path) -> dict[str, str]:
    """This install's generated credentials: read, or created once (random) under ``home``, mode 0600.

    A file from an older kit (without the Redis user) gets the missing entries added once, under a lock,
    keeping every entry it had: its RabbitMQ password still opens the node it seeded."""
    path = home / CREDENTIALS_FILE
    try:
        creds = json.loads(path.read_text())
        if set(CREDENTIAL_KEYS) <= set(creds):
            return creds
        return _complete_credentials(home, path)
    except FileNotFoundError:
        pass
    private_dir(home)
    creds = _new_credentials()
    staging = home / f".{CREDENTIALS_FILE}.{os.getpid()}"
    write_private(staging, json.dumps(creds, indent=2) + "\n")
    try:
        os.link(staging, path)  # atomic, and fails if another process created it first: theirs wins
    except FileExistsError:
        creds = json.loads(path.read_text())
    finally:
        staging.unlink(missing_ok=True)
    return creds


def install_id(home: Path) -> str:
    """This install's id (8 hex digits): read, or made once under ``home`` (first writer wins)."""
    path = home / INSTALL_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    private_dir(home)
    staging = home / f".{INSTALL_ID_FILE}.{os.getpid()}"
    write_private(staging, secrets.token_hex(4) + "\n")
    try:
        os.link(staging, path)  # atomic, and fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        staging.unlink(missing_ok=True)
    return path.read_text().strip()


def kafka_prefix(env_var: str = "QUEUEKIT_KAFKA_PREFIX", own_broker: str = "qk.") -> str:
    """The prefix of a Kafka stack's topics and groups, the same in the harness and in every worker (they
    read the same environment and home): ``env_var`` when set; ``own_broker`` on the kit's own Kafka;
    on an external one ``own_broker`` with the install id, e.g. ``qk-1a2b3c4d.``: its own namespace."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    s = Settings.from_env()
    if not s.external("kafka"):
        return own_broker
    return f"{own_broker.rstrip('.')}-{install_id(s.home)}."


def _complete_credentials(home: Path, path: Path) -> dict[str, str]:
    import fcntl

    with open(home / f".{CREDENTIALS_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process adds them; the others read what it wrote
        creds = json.loads(path.read_text())
        missing = {k: v for k, v in _new_credentials().items() if k not in creds}
        if missing:
            creds |= missing
            staging = home / f".{CREDENTIALS_FILE}.{os.getpid()}"
            write_private(staging, json.dumps(creds, indent=2) + "\n")
            os.replace(staging, path)  # atomic: a reader sees the old file or the whole new one
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
    flower_redis: int = 5556  # a second Flower, watching the celery_redis workers on Redis
    rabbit_prometheus: int = 15692  # RabbitMQ's rabbitmq_prometheus plugin: /metrics
    dashboard: int = 8050  # queuekit dashboard
    redis: int = 6379
    redis_sentinel: int = 26379  # the cluster topology's Sentinels, one per node address
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
    redis_user: str = ""
    redis_password: str = ""
    external_redis_url: str | None = None  # QUEUEKIT_REDIS_URL
    rabbitmq_version: str = "3.10"  # QUEUEKIT_RABBITMQ_VERSION: the kit's own RabbitMQ node(s)

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("QUEUEKIT_HOME", str(Path.home() / ".cache" / "queuekit")))
        kafka_home = os.environ.get("KAFKA_HOME")
        offset = int(_env("QUEUEKIT_PORT_OFFSET", "0"))
        generated = {}
        if not all(os.environ.get(f"QUEUEKIT_{n}") for n in ("RABBIT_USER", "RABBIT_PASSWORD", "FLOWER_USER",
                                                            "FLOWER_PASSWORD", "REDIS_USER", "REDIS_PASSWORD")):
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
            redis_user=_env("QUEUEKIT_REDIS_USER", generated.get("redis_user", "")),
            redis_password=_env("QUEUEKIT_REDIS_PASSWORD", generated.get("redis_password", "")),
            external_redis_url=os.environ.get("QUEUEKIT_REDIS_URL"),
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
        """The address of node ``index`` (0-based) of ``broker``: .11-.13 RabbitMQ, .21-.23 Kafka, .31-.33 Redis."""
        return f"{self.cluster_subnet}.{NODE_BASE.get(broker, 21) + index}"

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
        """Is ``broker`` ("rabbitmq" | "kafka" | "redis") someone else's, which the kit only uses?"""
        named = {"rabbitmq": self.external_amqp_url, "redis": self.external_redis_url}.get(
            broker, self.external_kafka_bootstrap)
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
        than the default; else "queuekit-<install id>" on an external broker (this install's own
        namespace: two kits on one broker never share it), "/" on the kit's own."""
        if self.rabbit_vhost:
            return self.rabbit_vhost
        if self.external_amqp_url:
            path = urlsplit(self.external_amqp_url).path
            return f"queuekit-{install_id(self.home)}" if path in ("", "/", "//") else unquote(path[1:])
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
    def redis_url(self) -> str:
        """The kit's own Redis (the first node in the cluster topology: clients there go through
        ``redis_sentinels`` instead, see core/redis_client.py), or QUEUEKIT_REDIS_URL."""
        if self.external_redis_url:
            return self.external_redis_url
        user, pw = quote(self.redis_user, safe=""), quote(self.redis_password, safe="")
        host = self.node_address("redis", 0) if self.clustered else LOOPBACK
        return f"redis://{user}:{pw}@{host}:{self.ports.redis}/0"

    @property
    def redis_sentinels(self) -> list[tuple[str, int]]:
        """The cluster topology's Sentinels: one beside each Redis node."""
        return [(host, self.ports.redis_sentinel) for host in self.node_addresses("redis")]

    @property
    def redis_prefix(self) -> str:
        """The prefix of every Redis key the kit makes: QUEUEKIT_REDIS_PREFIX, else ``qk:<install id>:`` on an
        external Redis (installs sharing one server never meet) and ``qk:`` on the kit's own."""
        if os.environ.get("QUEUEKIT_REDIS_PREFIX"):
            return os.environ["QUEUEKIT_REDIS_PREFIX"]
        return f"qk:{install_id(self.home)}:" if self.external_redis_url else "qk:"  # the install's own, like vhosts

    @property
    def flower_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.flower}"

    @property
    def flower_redis_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.flower_redis}"

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
