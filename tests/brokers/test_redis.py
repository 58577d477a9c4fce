"""The kit's own Redis: authenticated only, no secret on a command line, AOF on; and its manners on a shared Redis."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis

from queuekit import brokers
from queuekit.brokers.process import port_open
from queuekit.brokers.redis import DURABILITY, Redis
from queuekit.core.config import LOOPBACK, Settings, install_id
from queuekit.core.redis_keys import KeySpace


@pytest.fixture(scope="module")
def redis_kit() -> Settings:
    """A private kit of Redis only, beside the session's: own home, ports 300 above the environment's."""
    env_settings = Settings.from_env()
    if env_settings.mode != "local" or env_settings.external_redis_url:
        pytest.skip("the kit's own Redis: not applicable to an external one")
    home = Path(env_settings.home) / "test-redis"
    offset = env_settings.port_offset + 300
    s = env_settings.with_(home=home, port_offset=offset, ports=type(env_settings.ports).offset_by(offset),
                           topology="single")
    assert brokers.up(s, ("redis",)) == ["redis"]
    yield s
    brokers.down(s, ("redis",))


def _client(s: Settings, **auth) -> redis.Redis:
    return redis.Redis(LOOPBACK, s.ports.redis, socket_timeout=5, **auth)


@pytest.mark.brokers
def test_redis_answers_only_the_kits_user(redis_kit):
    s = redis_kit
    with pytest.raises(redis.AuthenticationError):  # no credentials: the default user is off
        _client(s).ping()
    with pytest.raises(redis.AuthenticationError):
        _client(s, username="default", password="").ping()
    with pytest.raises(redis.AuthenticationError):
        _client(s, username=s.redis_user, password=s.redis_password + "x").ping()
    kit = _client(s, username=s.redis_user, password=s.redis_password)
    assert kit.ping() is True
    with pytest.raises(redis.exceptions.NoPermissionError):  # the kit deletes by name, never wipes a database
        kit.flushdb()
    assert kit.config_get("bind") == {"bind": LOOPBACK}
    assert kit.config_get("protected-mode") == {"protected-mode": "yes"}


@pytest.mark.brokers
def test_redis_keeps_its_password_off_every_command_line_and_in_0600_files(redis_kit):
    s = redis_kit
    component = Redis(s)
    pid = component.proc.pid()
    assert pid and psutil.Process(pid).name() == "redis-server"
    leaking = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if s.redis_password in " ".join(proc.info["cmdline"] or []):
            leaking.append(proc.info)
    assert leaking == []
    config = component.dir / "redis.conf"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert s.redis_password not in config.read_text()  # only its SHA-256 is there
    assert oct(s.run_dir.stat().st_mode & 0o777) == "0o700"
    assert oct(Settings.from_env().credentials_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.brokers
def test_redis_tool_passes_the_password_in_the_environment(redis_kit):
    from queuekit.brokers.tools import invocation

    call = invocation(redis_kit, "redis-cli", ("ping",))
    assert redis_kit.redis_password not in " ".join(call.argv)
    done = subprocess.run(call.argv, env=call.env, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "PONG", done.stderr


@pytest.mark.brokers
def test_redis_runs_with_aof_everysec_and_keeps_a_write_through_sigkill(redis_kit):
    s = redis_kit
    component = Redis(s)
    seen = component.observed_config()
    assert {k: seen[k] for k in DURABILITY} == DURABILITY == {"appendonly": "yes", "appendfsync": "everysec"}
    assert list((component.dir / "data").glob("appendonlydir/*.aof"))
    assert {k: component.status().config[k] for k in DURABILITY} == DURABILITY  # what results.json records
    kit = component.client()
    kit.set("qk:test:through-kill", b"kept")
    names = [f"qk:test:through-kill:{i}" for i in range(500)]
    kit.mset(dict.fromkeys(names, b"kept"))  # and a burst just before the kill, well inside one fsync second
    # The reply comes after the write reached the AOF file (the kernel's page cache): a process crash
    # cannot lose it, only a machine crash within the fsync second could.
    assert component.kill(lambda _: None)  # SIGKILL: no shutdown, no last fsync; returns once its port is free
    assert not port_open(LOOPBACK, s.ports.redis)
    assert brokers.up(s, ("redis",)) == ["redis"]
    assert component.client().get("qk:test:through-kill") == b"kept"
    assert component.client().mget(names) == [b"kept"] * len(names)
    component.client().delete("qk:test:through-kill", *names)


@pytest.mark.brokers
def test_redis_keeps_transactions_and_script_writes_through_a_restart(redis_kit):
    """The AOF keeps MULTI/EXEC and a Lua script's writes as MULTI/EXEC; Redis 7.0 replays them as the default
    user and re-checks its rights at EXEC (redis/redis #14541): with ``user default off`` they were all dropped on
    restart, silently (found by dramatiq_redis's broker-restart scenario: 15 of 40 confirmed tasks gone)."""
    s = redis_kit
    component = Redis(s)
    kit = component.client()
    names = [f"qk:test:{n}" for n in ("multi-1", "multi-2", "script-1", "script-2", "plain")]
    # (two writes each: Redis 7 propagates a transaction or script of ONE write without MULTI/EXEC)
    kit.pipeline(transaction=True).set(names[0], b"kept").set(names[1], b"kept").execute()
    kit.eval("redis.call('set', KEYS[1], 'kept'); redis.call('set', KEYS[2], 'kept')", 2, names[2], names[3])
    kit.set(names[4], b"kept")
    component.stop(lambda _: None)  # SIGTERM: a graceful restart
    component.start(lambda _: None)
    assert component.client().mget(names) == [b"kept"] * len(names)
    component.client().delete(*names)


@pytest.mark.brokers
def test_redis_down_leaves_no_process_and_no_port(redis_kit):
    s = redis_kit
    pid = Redis(s).proc.pid()
    assert pid
    assert brokers.down(s, ("redis",)) == ["redis"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not port_open(LOOPBACK, s.ports.redis)
    assert brokers.up(s, ("redis",)) == ["redis"]  # for the tests after this one


def _one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_missing_redis_server_is_one_line_with_the_fix(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "QUEUEKIT_HOME": str(tmp_path / "home"), "QUEUEKIT_PORT_OFFSET": "400"}
    env.pop("QUEUEKIT_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "queuekit", "up", "redis"], env=env, capture_output=True, text=True,
                          timeout=60)
    line = _one_line(done)
    assert "redis-server is not installed" in line and "apt-get install" in line


def test_busy_redis_port_is_one_line_naming_the_holder(tmp_path):
    offset = Settings.from_env().port_offset + 500
    port = 6379 + offset
    with socket.socket() as holder:
        holder.bind((LOOPBACK, port))
        holder.listen()
        env = {**os.environ, "QUEUEKIT_HOME": str(tmp_path / "home"), "QUEUEKIT_PORT_OFFSET": str(offset)}
        env.pop("QUEUEKIT_REDIS_URL", None)
        done = subprocess.run([sys.executable, "-m", "queuekit", "up", "redis"], env=env, capture_output=True,
                              text=True, timeout=60)
    line = _one_line(done)
    assert f"port {port} (Redis)" in line and "QUEUEKIT_REDIS_URL" in line


# -- a Redis the kit shares: the kit's own, used through QUEUEKIT_REDIS_URL as someone else's --------------
FOREIGN_PREFIX = "someone-else:"


def _foreign(client: redis.Redis) -> list[str]:
    """Keys of every type another application might hold, two of them ALMOST the kit's prefix."""
    client.set(FOREIGN_PREFIX + "string", b"\x00\xffbinary")
    client.set(FOREIGN_PREFIX + "ttl", "expires later", ex=3600)
    client.rpush(FOREIGN_PREFIX + "list", "a", "b", "c")
    client.hset(FOREIGN_PREFIX + "hash", mapping={"f1": "v1", "f2": "v2"})
    client.sadd(FOREIGN_PREFIX + "set", "x", "y")
    stream = FOREIGN_PREFIX + "stream"
    for i in range(5):
        client.xadd(stream, {"n": str(i)})
    client.xgroup_create(stream, "their-group", id="0")
    client.xreadgroup("their-group", "their-consumer", {stream: ">"}, count=2)  # two entries pending
    client.set("qk:", "a key named exactly like the kit's own-install prefix's root")
    client.set("qk:other-install:queue", "another install's key")
    return [FOREIGN_PREFIX + n for n in ("string", "ttl", "list", "hash", "set", "stream")] + [
        "qk:", "qk:other-install:queue"]


def _snapshot(client: redis.Redis, names: list[str]) -> dict[str, tuple]:
    """Byte for byte: DUMP (value, type, a stream's groups and pending entries) and whether a TTL is set."""
    return {n: (client.dump(n), client.ttl(n) > 0, client.type(n)) for n in names}


@pytest.mark.brokers
def test_external_redis_cleanup_deletes_only_the_kits_recorded_keys(redis_kit, monkeypatch):
    own = Redis(redis_kit).client()
    monkeypatch.setenv("QUEUEKIT_REDIS_URL", redis_kit.redis_url)
    monkeypatch.delenv("QUEUEKIT_REDIS_PREFIX", raising=False)
    shared = Settings.from_env().with_(home=redis_kit.home)
    assert shared.external("redis") and shared.redis_prefix == f"qk:{install_id(redis_kit.home)}:"  # the install's own
    assert brokers.up(shared, ("redis",)) == []  # external: checked, never started
    assert brokers.down(shared, ("redis",)) == []  # ...and never stopped
    assert Redis(redis_kit).proc.pid()

    names = _foreign(own)
    before = _snapshot(own, names)
    space = KeySpace(own, shared.redis_prefix)
    with pytest.raises(ValueError):
        space.record("someone-else:string")  # the kit cannot even note a foreign name as its own
    queue, stream = space.key("queue", "signup"), space.key("events")
    space.record(queue, stream)
    own.rpush(queue, "task-1", "task-2")
    own.xadd(stream, {"e": "1"})
    own.xgroup_create(stream, "workers", id="0")
    own.set(space.key("unrecorded"), "a framework's own bookkeeping under the kit's prefix")

    assert space.cleanup() == 2
    assert own.exists(queue, stream) == 0
    assert own.exists(space.key("unrecorded")) == 1  # not recorded: only a sweep removes it
    assert space.strays() == {space.key("unrecorded")}
    assert space.cleanup(sweep=True) == 1
    assert own.exists(space.key("unrecorded"), space.registry) == 0

    assert _snapshot(own, names) == before
    pending = own.xpending(FOREIGN_PREFIX + "stream", "their-group")
    assert pending["pending"] == 2
    own.delete(*names)


@pytest.mark.brokers
def test_down_purge_on_an_external_redis_deletes_this_installs_keys_only(redis_kit, monkeypatch):
    """`queuekit down --purge`: every stack's recorded keys and the strays under the install's prefix go;
    foreign keys (another install's included) stay byte for byte, and the server is not stopped."""
    from click.testing import CliRunner

    from queuekit.cli import cli

    own = Redis(redis_kit).client()
    for stale in own.keys(FOREIGN_PREFIX + "*"):  # an earlier failed run's
        own.delete(stale)
    monkeypatch.setenv("QUEUEKIT_REDIS_URL", redis_kit.redis_url)
    monkeypatch.setenv("QUEUEKIT_HOME", str(redis_kit.home))
    monkeypatch.delenv("QUEUEKIT_REDIS_PREFIX", raising=False)
    prefix = f"qk:{install_id(redis_kit.home)}:"
    names = _foreign(own)
    before = _snapshot(own, names)
    stack_space = KeySpace(own, prefix + "somestack:")  # a Redis stack's own record (queuekit/stacks/redis.py)
    stack_space.record(stack_space.key("queue"))
    own.rpush(stack_space.key("queue"), "a task")
    own.set(prefix + "a-frameworks-own-key", "unrecorded, under the install's prefix")

    done = CliRunner().invoke(cli, ["down", "redis", "--purge"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "Redis: deleted 2 key(s)" in done.output
    assert list(own.scan_iter(match=prefix.replace(":", "\\:") + "*")) == []
    assert _snapshot(own, names) == before
    assert Redis(redis_kit).proc.pid()  # an external Redis is never stopped
    own.delete(*names)
