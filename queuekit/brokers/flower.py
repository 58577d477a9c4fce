"""Flower (from PyPI), Celery's monitor, started by the kit against the kit's RabbitMQ.

It reads task events from the broker and queue lengths from the management
API (``--broker_api``). Credentials reach it through FLOWER_* environment
variables, so they do not show in ``ps``.
"""
from __future__ import annotations

import os
import sys
import time

import httpx

from queuekit.core.config import LOOPBACK, Settings

from .base import Say, Status
from .process import ManagedProcess, elapsed, ensure_ports_free

READY_TIMEOUT = 60.0


class Flower:
    name = "flower"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.run_dir / "flower"
        self.proc = ManagedProcess("flower", self.dir)

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
        return httpx.get(f"{self.settings.flower_url}/healthcheck", timeout=2).text.strip() == "OK"

    def _auth_ok(self) -> bool:
        """Does the running Flower take this install's basic-auth credentials?"""
        r = httpx.get(f"{self.settings.flower_url}/api/workers", params={"refresh": "false"},
                      auth=self.settings.flower_auth, timeout=5)
        return r.status_code != 401

    def status(self) -> Status:
        pid = self.proc.pid()
        try:
            healthy = self.ready()
            return Status(self.name, self.settings.flower_url, "kit" if pid else "unmanaged", healthy, pid,
                          _flower_version())
        except httpx.HTTPError as exc:
            return Status(self.name, self.settings.flower_url, "kit" if pid else "stopped", False, pid,
                          detail=str(exc)[:120])

    def start(self, say: Say) -> bool:
        if self.proc.pid() is not None:
            self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT, what="Flower (already started) to answer")
            if self._auth_ok():
                return False
            say("Flower runs with other credentials than this install's: restarting it")
            self.proc.stop(timeout=15)
        ensure_ports_free(LOOPBACK, {"Flower": self.settings.ports.flower}, "set QUEUEKIT_PORT_OFFSET")
        t0 = time.monotonic()
        say(f"starting Flower on {self.settings.flower_url}…")
        self.proc.spawn([sys.executable, "-m", "celery", "-A", "celery_app.app", "flower",
                         f"--address={LOOPBACK}", f"--port={self.settings.ports.flower}"],
                        env=self._env())
        self.proc.wait_ready(self.ready, timeout=READY_TIMEOUT, what=f"Flower to answer on {self.settings.flower_url}")
        say(f"Flower ready in {elapsed(t0)}")
        return True

    def stop(self, say: Say) -> bool:
        if self.proc.stop(timeout=15):
            say("Flower stopped")
            return True
        return False


def _flower_version() -> str:
    from importlib.metadata import version

    return version("flower")
