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

from queuekit.core.config import Settings, private_dir, write_private
from queuekit.core.errors import KitError

from .base import Say

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_env_file(settings: Settings) -> Path:
    """This install's credentials for docker-compose.yml's variables, in an env file only its owner reads
    (compose reads it with --env-file: no password on a command line, and the compose file has no fallback)."""
    values = {"QUEUEKIT_RABBIT_USER": settings.rabbit_user, "QUEUEKIT_RABBIT_PASSWORD": settings.rabbit_password,
              "QUEUEKIT_FLOWER_USER": settings.flower_user, "QUEUEKIT_FLOWER_PASSWORD": settings.flower_password}
    path = private_dir(settings.run_dir) / "compose.env"
    write_private(path, "".join(f"{name}={value}\n" for name, value in values.items()))  # urlsafe: no quoting
    return path


def compose_command(settings: Settings) -> list[str]:
    return ["docker", "compose", "--env-file", str(compose_env_file(settings)), "-f", str(COMPOSE_FILE),
            "up", "-d", "--wait"]


def compose_up(settings: Settings, say: Say) -> None:
    if not shutil.which("docker"):
        raise KitError("QUEUEKIT_BROKERS=docker but 'docker' is not on PATH", "install Docker, or unset QUEUEKIT_BROKERS")
    say("docker compose up -d --wait…")
    done = subprocess.run(compose_command(settings), capture_output=True, text=True)
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
