"""Flower (from PyPI), Celery's monitor, started by the kit: one against the kit's RabbitMQ, one against its Redis.

A Flower instance watches the workers of ONE broker (it reads their task events
from it): ``Flower`` the ``celery`` / ``celery_quorum`` workers on RabbitMQ (queue
lengths from the management API, ``--broker_api``), ``FlowerRedis`` the
``celery_redis`` workers (``celery_app.app`` configured with ``transport="redis"``:
the same broker URL, Sentinel options and key prefix as those workers; Flower reads
queue lengths from Redis itself). Credentials reach both through FLOWER_* and
the kit's own environment variables, so they do not show in ``ps``; both take the
install's one generated Flower login.
"""
from __future__ import annotations

import os
import sys
import time

import httpx

from queuekit.core.config import LOOPBACK, Settings
from queuekit.core.options import StackOptions, options_env

from .base import Say, Status
from .process import ManagedProcess, elapsed, ensure_ports_free

READY_TIMEOUT = 60.0


class Flower:
    name = "flower"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.run_dir / self.name
        self.proc = ManagedProcess(self.name, self.dir)

    @property
    def url(self) -> str:
        return self.settings.flower_url

    @property
    def port(self) -> int:
        return self.settings.ports.flower

    def _env(self) -> dict[str, str]:
        s = self.settings
        user, pw = s.mgmt_auth
        scheme, rest = s.mgmt_url.split("://", 1)
        return {
            **os.environ,
            "FLOWER_BASIC_AUTH": f"{s.flower_user}:{s.flower_password}",
            "FLOWER_BROKER_API": f"{scheme}://{user}:{pw}@{rest}/api/",
            "FLOWER_PERSISTENT": "False",
            "FLOWER_PURGE_OFFLINE_WORKERS": "300",
        }

    def ready(self) -> bool:
        # /healthcheck is Flower's unauthenticated liveness endpoint.
        return httpx.get(f"{self.url}/healthcheck", timeout=2).text.strip() == "OK"

    def _auth_ok(self) -> bool:
        """Does the running Flower take this install's basic-auth credentials?"""
        r = httpx.get(f"{self.url}/api/workers", params={"refresh": "false"},
                      auth=self.settings.flower_auth, timeout=5)
        return r.status_code != 401

    def status(self) -> Status:
        pid = self.proc.pid()
        try:
            healthy = self.ready()
            return Status(self.name, self.url, "kit" if pid else "unmanaged", healthy, pid, _flower_version())
        except httpx.HTTPError as exc:
            return Status(self.name, self.url, "kit" if pid else "stopped", False, pid,
                          detail=str(exc)[:120])

    def start(self, say: Say) -> bool:
        if self.proc.pid() is not None:
            self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT, what="Flower (already started) to answer")
            if self._auth_ok():
                return False
            say(f"{self.name} runs with other credentials than this install's: restarting it")
            self.proc.stop(timeout=15)
        ensure_ports_free(LOOPBACK, {self.name: self.port}, "set QUEUEKIT_PORT_OFFSET")
        t0 = time.monotonic()
        say(f"starting {self.name} on {self.url}…")
        self.proc.spawn([sys.executable, "-m", "celery", "-A", "celery_app.app", "flower",
                         f"--address={LOOPBACK}", f"--port={self.port}"],
                        env=self._env())
        self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT, what=f"{self.name} to answer on {self.url}")
        say(f"{self.name} ready in {elapsed(t0)}")
        return True

    def stop(self, say: Say) -> bool:
        if self.proc.stop(timeout=15):
            say(f"{self.name} stopped")
            return True
        return False


class FlowerRedis(Flower):
    """The celery_redis workers' Flower: ``celery_app.app`` over Redis (its broker URL, Sentinel options and
    ``global_keyprefix`` come from ``celery_app/redis.py``, as in those workers); no management API."""

    name = "flower-redis"

    @property
    def url(self) -> str:
        return self.settings.flower_redis_url

    @property
    def port(self) -> int:
        return self.settings.ports.flower_redis

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in super()._env().items() if k != "FLOWER_BROKER_API"}
        return {**env, **options_env(StackOptions(transport="redis"))}  # the app celery_redis's workers run


def _flower_version() -> str:
    from importlib.metadata import version

    return version("flower")
