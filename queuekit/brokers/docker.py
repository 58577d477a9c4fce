"""The Docker path, for users whose machine runs a Docker engine.

Not exercised on the kit's own machines (no Docker engine runs there). Two
small entry points: ``compose_up`` for the CLI (docker-compose.yml at the repo
root, same ports as the local brokers) and ``containers`` for pytest through
testcontainers, which yields Settings pointing at the containers.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from queuekit.core.config import Settings
from queuekit.core.errors import KitError

from .base import Say

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_up(settings: Settings, say: Say) -> None:
    if not shutil.which("docker"):
        raise KitError("QUEUEKIT_BROKERS=docker but 'docker' is not on PATH", "install Docker, or unset QUEUEKIT_BROKERS")
    say("docker compose up -d --wait…")
    done = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "up", "-d", "--wait"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise KitError(f"docker compose failed: {done.stderr.strip()[-200:]}",
                       "is the Docker engine running? Or unset QUEUEKIT_BROKERS to use local brokers")


@contextmanager
def containers(settings: Settings) -> Iterator[Settings]:
    """RabbitMQ (management) and Kafka (KRaft) in throwaway containers, via testcontainers."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    user, pw = settings.rabbit_user, settings.rabbit_password
    rabbit_container = RabbitMqContainer("rabbitmq:3.13-management", username=user, password=pw).with_exposed_ports(15672)
    with rabbit_container as rabbit, \
            KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
        host, amqp = rabbit.get_container_host_ip(), rabbit.get_exposed_port(5672)
        mgmt = rabbit.get_exposed_port(15672)
        yield settings.with_(
            mode="external",
            external_amqp_url=f"amqp://{user}:{pw}@{host}:{amqp}//",
            external_mgmt_url=f"http://{host}:{mgmt}",
            external_kafka_bootstrap=kafka.get_bootstrap_server(),
        )
