"""`up` is idempotent, `down` leaves nothing behind, and a missing binary is one clear line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from queuekit import brokers
from queuekit.brokers.process import port_open
from queuekit.core.config import LOOPBACK, Settings


def _pids(settings: Settings) -> dict[str, int | None]:
    return {s.name: s.pid for s in brokers.statuses(settings)}


def test_up_twice_is_a_noop(kit):
    before = _pids(kit)
    assert brokers.up(kit) == []
    assert _pids(kit) == before


@pytest.fixture
def second_kit(tmp_path: Path) -> Settings:
    """A second, private kit beside the session's: own home, ports 100 above the session's."""
    env_settings = Settings.from_env()
    if env_settings.external_amqp_url or env_settings.external_kafka_bootstrap or env_settings.mode != "local":
        pytest.skip("lifecycle of kit-managed brokers: not applicable to external brokers")
    cache = env_settings.cache_dir  # reuse the provisioned jars
    offset = env_settings.port_offset + 100  # relative: kits started with other QUEUEKIT_PORT_OFFSETs keep theirs
    s = env_settings.with_(home=tmp_path / "home", port_offset=offset, ports=type(env_settings.ports).offset_by(offset))
    s.home.mkdir(parents=True)
    (s.home / "cache").symlink_to(cache)
    yield s
    brokers.down(s)


@pytest.mark.brokers  # starts a kit of its own: not part of the broker-free subset
def test_down_leaves_no_process_and_no_port(second_kit):
    s = second_kit
    assert brokers.up(s) == ["rabbitmq", "kafka", "redis", "flower", "flower-redis"]
    pids = {name: pid for name, pid in _pids(s).items()}
    assert all(pids.values()), pids
    assert oct(s.run_dir.stat().st_mode & 0o777) == "0o700"  # state, logs, configs: owner only
    assert oct((s.run_dir / "rabbitmq" / "rabbitmq.conf").stat().st_mode & 0o777) == "0o600"  # holds the password
    trees = [p for pid in pids.values() for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]]

    assert brokers.down(s) == ["flower-redis", "flower", "redis", "kafka", "rabbitmq"]

    alive = [p for p in trees if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running after down: {[(p.pid, p.name()) for p in alive]}"
    p = s.ports
    bound = [port for port in (p.amqp, p.rabbit_mgmt, p.rabbit_stream, p.rabbit_dist, p.kafka,
                               p.kafka_controller, p.flower, p.flower_redis, p.redis) if port_open(LOOPBACK, port)]
    assert bound == [], f"ports still bound after down: {bound}"


@pytest.mark.brokers
def test_a_node_kept_from_an_earlier_install_gets_this_installs_password(second_kit):
    """default_pass only seeds an empty database: a node directory kept from an install with other
    credentials (CI's cached home, an upgrade from queuekit/queuekit) must still come up and let us in."""
    earlier = second_kit.with_(rabbit_password="an-earlier-install")
    assert brokers.up(earlier, ("rabbitmq",)) == ["rabbitmq"]
    brokers.down(earlier, ("rabbitmq",))
    assert (second_kit.run_dir / "rabbitmq" / "mnesia").is_dir()  # the database stays for the next up

    assert brokers.up(second_kit, ("rabbitmq",)) == ["rabbitmq"]
    r = httpx.get(f"{second_kit.mgmt_url}/api/whoami", auth=second_kit.mgmt_auth, timeout=10)
    assert r.status_code == 200, r.text
    old = httpx.get(f"{second_kit.mgmt_url}/api/whoami", auth=(second_kit.rabbit_user, "an-earlier-install"),
                    timeout=10)
    assert old.status_code == 401, "the earlier password still works"


def test_missing_java_is_one_line_with_the_fix(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "QUEUEKIT_HOME": str(tmp_path / "home"),
           "QUEUEKIT_PORT_OFFSET": "200"}
    env.pop("KAFKA_HOME", None)
    env.pop("QUEUEKIT_KAFKA_BOOTSTRAP", None)
    done = subprocess.run([sys.executable, "-m", "queuekit", "up", "kafka"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "'java' was not found" in lines[0] and "apt-get install" in lines[0]
