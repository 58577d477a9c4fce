"""Redis from Debian's redis-server package, run as the kit's own child process.

``redis-server <config file>``: everything is in a 0600 config file in the
node's private directory (never a password on a command line). The kit's user
is an ACL user with a generated password (stored hashed in the config); the
``default`` user is switched off, so a client without the kit's credentials
gets nothing. The server binds 127.0.0.1 with ``protected-mode yes``.

Durability: AOF on with ``appendfsync everysec`` (Redis's documented durable
setting: a write is in the kernel at once and on disk within a second, so a
machine crash can lose up to a second of confirmed writes; a process crash
loses none). ``DURABILITY`` holds it as data, and ``observed_config`` reads
back what the running server really uses (for status, results.json, the report).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from queuekit.core.config import LOOPBACK, Settings, private_dir, write_private
from queuekit.core.errors import KitError
from queuekit.core.redis_client import redacted

from .base import Say, Status
from .process import ManagedProcess, elapsed, ensure_ports_free, wait_ports_free

REDIS_SERVER = os.environ.get("QUEUEKIT_REDIS_SERVER", "redis-server")
READY_TIMEOUT = 30.0
PACKAGES = ("redis-server", "redis-tools")  # the server (also Sentinel: redis-server --sentinel), redis-cli
# What the kit asks of every Redis it starts; observed_config() shows what the server actually uses.
DURABILITY = {
    "appendonly": "yes",  # every write goes to the append-only file before it is acknowledged...
    "appendfsync": "everysec",  # ...which is fsynced once a second: a machine crash may lose ~1 s
}
# The kit's ACL user may do everything but wipe a database: the kit deletes by name (redis_keys.py).
ACL_RIGHTS = "~* &* +@all -flushall -flushdb"
OBSERVED = ("appendonly", "appendfsync", "save", "maxmemory-policy", "protected-mode", "bind")


def install_redis(say: Say, binary: str = REDIS_SERVER) -> None:
    """apt-get install the Redis packages when ``binary`` is missing (root only), else say the command."""
    if shutil.which(binary):
        return
    if os.sep in binary:  # QUEUEKIT_REDIS_SERVER names a file: the user chose it, apt-get cannot make it
        raise KitError(f"QUEUEKIT_REDIS_SERVER={binary} is not an executable file",
                       "point it at a redis-server binary, or unset it to use Debian's")
    fix = f"run: sudo apt-get install -y {' '.join(PACKAGES)}"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise KitError(f"{binary} is not installed", fix)
    say(f"installing {' '.join(PACKAGES)} with apt-get (first run only)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise KitError(f"'{' '.join(argv)}' failed: {last[0]}", fix)
    if not shutil.which(binary):
        raise KitError(f"{binary} is still missing after apt-get install", fix)


def acl_lines(settings: Settings, rights: str = ACL_RIGHTS) -> list[str]:
    """The config's users: ``default`` behind a password nobody knows (no anonymous client), the kit's user by
    password hash.

    Not ``user default off``: Redis 7.0 replays the AOF as the default user and re-checks its rights at each
    EXEC, so with the default user off every MULTI/EXEC in the AOF (and every Lua script's writes, which the AOF
    keeps as MULTI/EXEC: Dramatiq's enqueue, kombu's and RQ's pipelines) is dropped on restart, silently
    (redis/redis #14541, fixed by #14545 after 7.0; valkey #3983). The default user keeps the kit's rights, so
    the replay passes, and a random password that is never stored, so no client can be it."""
    digest = hashlib.sha256(settings.redis_password.encode()).hexdigest()  # the config never holds the password
    nobody = hashlib.sha256(secrets.token_bytes(32)).hexdigest()  # the hash of a password thrown away at once
    return [f"user default on #{nobody} resetchannels {rights}",
            f"user {settings.redis_user} on #{digest} {rights}"]


def server_config(settings: Settings, data: Path, address: str, extra: tuple[str, ...] = ()) -> str:
    """A redis.conf for one node; ``extra`` adds role lines (replicaof, masterauth) in the cluster."""
    return "\n".join([
        f"bind {address}",  # this address only: never 0.0.0.0
        f"port {settings.ports.redis}",
        "protected-mode yes",
        "daemonize no",  # the kit's child process: ManagedProcess tracks and stops it
        'logfile ""',  # stdout, which ManagedProcess writes to the node's log file
        f"dir {data}",
        *(f"{k} {v}" for k, v in DURABILITY.items()),
        "enable-debug-command no",
        *acl_lines(settings),
        *extra,
        "",
    ])


def ping(url: str, timeout: float = 2.0) -> bool:
    """PING with the URL's credentials: True only for an authenticated PONG."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout) as client:
        return bool(client.ping())


def observed_config(client) -> dict[str, str]:
    """What the server really runs with (CONFIG GET), for status lines, results.json and the report."""
    return {k: v for name in OBSERVED for k, v in client.config_get(name).items()}


class Redis:
    name = "redis"
    durability = DURABILITY

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.run_dir / "redis"
        self.proc = ManagedProcess("redis", self.dir)

    def ready(self) -> bool:
        return ping(self.settings.redis_url)

    def client(self):
        import redis

        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5)

    def observed_config(self) -> dict[str, str]:
        with self.client() as c:
            return observed_config(c)

    def status(self) -> Status:
        import redis

        pid = self.proc.pid()
        url = redacted(self.settings.redis_url)
        try:
            with self.client() as c:
                version = c.info("server")["redis_version"]
                seen = observed_config(c)
            detail = f"appendonly {seen.get('appendonly')}, appendfsync {seen.get('appendfsync')}"
            return Status(self.name, url, "kit" if pid else "unmanaged", True, pid, version, detail, seen)
        except (redis.RedisError, OSError, KeyError) as exc:
            return Status(self.name, url, "kit" if pid else "stopped", False, pid, detail=str(exc)[:120])

    def start(self, say: Say) -> bool:
        from queuekit.core.waiting import wait_for

        port = self.settings.ports.redis
        if self.proc.pid() is not None:
            wait_for(self.ready, timeout=READY_TIMEOUT, what="Redis (already started) to answer an authenticated PING")
            return False
        install_redis(say)
        ensure_ports_free(LOOPBACK, {"Redis": port}, "point the kit at that server with QUEUEKIT_REDIS_URL")
        private_dir(self.settings.run_dir)
        private_dir(self.dir)
        data = private_dir(self.dir / "data")
        config = self.dir / "redis.conf"
        write_private(config, server_config(self.settings, data, LOOPBACK))
        t0 = time.monotonic()
        say(f"starting Redis on {LOOPBACK}:{port} in {self.dir}…")
        self.proc.spawn([shutil.which(REDIS_SERVER) or REDIS_SERVER, str(config)], umask=0o077)
        self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT,
                             what=f"Redis to answer an authenticated PING on {LOOPBACK}:{port}")
        say(f"Redis ready in {elapsed(t0)}")
        return True

    def kill(self, say: Say) -> bool:
        """SIGKILL redis-server (no final AOF fsync) and wait until its port is free. With ``appendfsync
        everysec`` Redis write()s its AOF buffer before it sends the replies of that event-loop turn (unless a
        slow background fsync makes it postpone the write, up to 2 s) and fsyncs once a second: a process kill
        keeps what was written (the page cache), a power cut may lose up to a second or two of it."""
        if self.proc.pid() is None:
            return False
        self.proc.kill("Redis")
        wait_ports_free(LOOPBACK, {"Redis": self.settings.ports.redis}, "the killed Redis")
        say("Redis killed (SIGKILL)")
        return True

    def stop(self, say: Say) -> bool:
        if not self.proc.stop(timeout=30):  # SIGTERM: Redis fsyncs the AOF and exits
            return False
        say("Redis stopped")
        return True
