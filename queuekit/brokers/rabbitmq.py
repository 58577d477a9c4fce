"""RabbitMQ from Debian's rabbitmq-server package, run as the kit's own child process.

We call the scripts in /usr/lib/rabbitmq/bin/ directly (the /usr/sbin wrappers
switch to the system `rabbitmq` user and the system's data directory) and give
the node a private directory through RABBITMQ_* variables: its own database,
logs, config, plugin list, Erlang cookie (HOME) and node name.

QUEUEKIT_RABBITMQ_VERSION picks the package: 3.10 is the host's (Debian 12); 4.x
runs the same scripts, with the same directory and variables, inside a Debian
root the kit builds (rabbitmq_root.py). One directory serves every version: its
database is wiped when the version changes (a 4.x node cannot read 3.10's, nor
4.3 a 4.0 one without the 4.2 step).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from queuekit.core.config import LOOPBACK, Settings, private_dir, write_private
from queuekit.core.errors import KitError
from queuekit.core.waiting import wait_for

from .base import Say, Status
from .process import ManagedProcess, elapsed, ensure_ports_free, port_open, wait_ports_free
from .rabbitmq_root import HOST_VERSION, in_root, provision_root, resolve_version, root_dir, root_info

RABBIT_BIN = Path(os.environ.get("QUEUEKIT_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
PLUGINS = ("rabbitmq_management", "rabbitmq_stream", "rabbitmq_stream_management",
           "rabbitmq_prometheus")  # prometheus: /metrics for scrapers
READY_TIMEOUT = 120.0


def install_rabbitmq(say: Say) -> None:
    """apt-get install rabbitmq-server when missing (root only), else say the command."""
    if (RABBIT_BIN / "rabbitmq-server").exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise KitError("RabbitMQ is not installed", "run: sudo apt-get install -y rabbitmq-server")
    say("installing rabbitmq-server with apt-get (first run only)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "rabbitmq-server"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise KitError(f"'{' '.join(argv)}' failed: {last[0]}",
                           "install it by hand: apt-get install -y rabbitmq-server")


class RabbitMQ:
    name = "rabbitmq"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.run_dir / "rabbitmq"
        self.proc = ManagedProcess("rabbitmq", self.dir)
        self.node = f"queuekit{settings.port_offset or ''}@localhost"
        self.version = resolve_version(settings.rabbitmq_version)  # "3.10": the host's package
        self.root = None if self.version == HOST_VERSION else root_dir(settings, self.version)

    def command(self, name: str, *args: str) -> list[str]:
        """The argv of one of RabbitMQ's scripts (rabbitmq-server, rabbitmqctl, …) of this version."""
        argv = [str(RABBIT_BIN / name), *args]
        return argv if self.root is None else in_root(self.root, [self.dir], argv)

    # -- files the node reads -------------------------------------------------
    def _write_config(self) -> None:
        p = self.settings.ports
        private_dir(self.settings.run_dir)
        private_dir(self.dir)
        made_by = self.dir / "version"  # which version's node wrote mnesia/
        if made_by.exists() and made_by.read_text().strip() != self.version:
            shutil.rmtree(self.dir / "mnesia", ignore_errors=True)  # the other version's database: unreadable here
        made_by.write_text(self.version + "\n")
        for sub in ("mnesia", "log", "home"):
            private_dir(self.dir / sub)
        write_private(self.dir / "rabbitmq.conf", "\n".join([  # holds the password: 0600
            f"listeners.tcp.default = {LOOPBACK}:{p.amqp}",
            f"management.tcp.ip = {LOOPBACK}",
            f"management.tcp.port = {p.rabbit_mgmt}",
            f"stream.listeners.tcp.1 = {LOOPBACK}:{p.rabbit_stream}",
            f"prometheus.tcp.ip = {LOOPBACK}",
            f"prometheus.tcp.port = {p.rabbit_prometheus}",
            # The kit's user, created on first boot; credentials come from config.
            f"default_user = {self.settings.rabbit_user}",
            f"default_pass = {self.settings.rabbit_password}",
            "default_user_tags.administrator = true",
            # Delivery acknowledgement timeout: a consumer holding a message longer
            # than this is closed and the message requeued (the long-task scenario).
            "consumer_timeout = 1800000",
            # Management counters refresh every 500 ms (default 5 s) so the kit's
            # drain / monitor read fresh queue depths (queuekit/rabbit.py relies on it).
            "collect_statistics_interval = 500",
            # The API's counters refresh at the smallest sample-retention interval (5 s by
            # default): 1 s retention brings queue depths to ~1 s old (measured: 5.0 s -> 1.0 s).
            "management.sample_retention_policies.global.minute = 1",
            "management.sample_retention_policies.basic.minute = 1",
            "management.sample_retention_policies.detailed.10 = 1",
            "",
        ]))
        # Quorum queues report their counters (ready, unacked, consumers) to the management API once per
        # "tick", 5 s by default and not in rabbitmq.conf's schema: 500 ms like the classic queues' stats
        # above (measured: a quorum queue's depth showed after 5.95 s, a classic one's after 0.62 s).
        (self.dir / "advanced.config").write_text("[{rabbit, [{quorum_tick_interval, 500}]}].\n")
        (self.dir / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")  # enabled offline
        (self.dir / "rabbitmq-env.conf").write_text("# queuekit: all settings come from the environment\n")

    def _env(self) -> dict[str, str]:
        d, p = self.dir, self.settings.ports
        return {
            **os.environ,
            "HOME": str(d / "home"),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_DIST_PORT": str(p.rabbit_dist),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}"
            + ("" if self.root is None else " -start_epmd false"),  # see _start_epmd
        }

    # -- observe ---------------------------------------------------------------
    def overview(self, timeout: float = 2.0) -> dict:
        r = httpx.get(f"{self.settings.mgmt_url}/api/overview", auth=self.settings.mgmt_auth, timeout=timeout)
        r.raise_for_status()
        return r.json()

    def ready(self) -> bool:
        """The configured URL's host and port take connections and the management API answers."""
        return port_open(*self.settings.amqp_address) and bool(self.overview().get("rabbitmq_version"))

    def ensure_namespace(self, say: Say) -> None:
        """The kit's vhost exists and its user may use it; created (with the user's rights) when missing."""
        s = self.settings
        if s.vhost == "/":
            return
        api, auth, vhost = f"{s.mgmt_url}/api", s.mgmt_auth, quote(s.vhost, safe="")
        r = httpx.get(f"{api}/vhosts/{vhost}", auth=auth, timeout=10)
        if r.status_code == 200:
            return
        say(f"RabbitMQ: creating the kit's vhost {s.vhost!r}")
        if s.external("rabbitmq"):  # recorded before it is made: `queuekit down --purge` deletes it
            from queuekit.stacks.manifest import KitObject, record
            record(s, [KitObject("rabbitmq", "vhost", s.vhost)])
        created = httpx.put(f"{api}/vhosts/{vhost}", auth=auth, timeout=10)
        granted = created.is_success and httpx.put(
            f"{api}/permissions/{vhost}/{quote(auth[0], safe='')}", auth=auth, timeout=10,
            json={"configure": ".*", "write": ".*", "read": ".*"}).is_success
        if not granted:
            raise KitError(f"the vhost {s.vhost!r} does not exist and user {auth[0]!r} may not create it "
                           f"(HTTP {created.status_code})",
                           f"ask an administrator: rabbitmqctl add_vhost {s.vhost} && rabbitmqctl set_permissions "
                           f"-p {s.vhost} {auth[0]} '.*' '.*' '.*'; or set QUEUEKIT_RABBIT_VHOST to one you may use")

    def drop_namespace(self) -> None:
        """Delete this vhost and what is in it (``compare``'s own vhosts, made by ``ensure_namespace``);
        never the default one."""
        s = self.settings
        if s.vhost != "/":
            httpx.delete(f"{s.mgmt_url}/api/vhosts/{quote(s.vhost, safe='')}", auth=s.mgmt_auth, timeout=30)

    def status(self) -> Status:
        pid = self.proc.pid()
        host, port = self.settings.amqp_address
        url = f"amqp://{host}:{port}/{self.settings.vhost.lstrip('/')} (management {self.settings.mgmt_url})"
        try:
            version = self.overview()["rabbitmq_version"]
            info = root_info(self.settings, self.version) if self.root and pid else None
            detail = f"Debian {info['suite']} root, rabbitmq-server {info['rabbitmq_server']}" if info else ""
            return Status(self.name, url, "kit" if pid else "unmanaged", True, pid, version, detail)
        except (httpx.HTTPError, KeyError) as exc:
            return Status(self.name, url, "kit" if pid else "stopped", False, pid, detail=str(exc)[:120])

    # -- lifecycle -------------------------------------------------------------
    def start(self, say: Say) -> bool:
        if self.proc.pid() is not None:
            running = self._running_version()
            if running != self.version:  # reusing it would run every cell on the other version, unsaid
                raise KitError(f"the kit's RabbitMQ {running} node is running here, not {self.version}",
                               "stop it first: queuekit down rabbitmq")
            self._ensure_kit_user(say)
            wait_for(self.ready, timeout=READY_TIMEOUT, what="RabbitMQ (already started) to answer")
            return False
        if self.root is None:
            install_rabbitmq(say)
        else:
            provision_root(self.settings, self.version, say)
        p = self.settings.ports
        ensure_ports_free(LOOPBACK, {"AMQP": p.amqp, "management": p.rabbit_mgmt,
                                     "stream": p.rabbit_stream, "distribution": p.rabbit_dist,
                                     "prometheus": p.rabbit_prometheus},
                          "point the kit at that broker with QUEUEKIT_AMQP_URL")
        self._write_config()
        self.epmd_was_running = port_open(LOOPBACK, p.epmd)
        (self.dir / "epmd.ours").write_text("no" if self.epmd_was_running else "yes")
        if self.root is not None and not self.epmd_was_running:
            self._start_epmd()
        t0 = time.monotonic()
        where = f" from {self.root}" if self.root else ""
        say(f"starting RabbitMQ {self.version} node {self.node} in {self.dir}{where}…")
        self.proc.spawn(self.command("rabbitmq-server"), env=self._env())

        def ready() -> bool:
            # default_user/default_pass only seed an empty database: a node directory kept from an
            # earlier install (a cached ~/.cache/queuekit) still has the old password, answers 401
            # for ever, and would look like a node that never started.
            self._ensure_kit_user(say)
            return self.ready()

        self.proc.wait_ready(ready, timeout=READY_TIMEOUT,
                             what=f"RabbitMQ to accept AMQP on {LOOPBACK}:{p.amqp} and serve its management API")
        say(f"RabbitMQ ready in {elapsed(t0)}")
        return True

    def stop(self, say: Say) -> bool:
        if not self.proc.stop(timeout=60):
            return False
        say("RabbitMQ stopped")
        if (self.dir / "epmd.ours").read_text() == "yes" and (epmd := self._epmd()):
            # epmd daemonizes away from the node; stop it when it was ours to leave no port behind.
            subprocess.run([*epmd, "-kill"], env=self._env(), capture_output=True)
        return True

    def kill(self, say: Say) -> bool:
        """SIGKILL the node's whole tree (a crash: no shutdown hook, nothing flushed by RabbitMQ itself) and wait
        until its ports are free, so ``start`` can follow. What the kernel already holds (written files in the
        page cache) survives, as it does for any process crash on a machine that stays up."""
        if self.proc.pid() is None:
            return False
        self.proc.kill("RabbitMQ")
        p = self.settings.ports
        wait_ports_free(LOOPBACK, {"AMQP": p.amqp, "management": p.rabbit_mgmt, "stream": p.rabbit_stream,
                                   "distribution": p.rabbit_dist, "prometheus": p.rabbit_prometheus}, "the killed RabbitMQ")
        if (self.dir / "epmd.ours").read_text() == "yes" and (epmd := self._epmd()):
            # as in stop: the next start starts (and owns) epmd again, so `queuekit down` still stops it
            subprocess.run([*epmd, "-kill"], env=self._env(), capture_output=True)
        say("RabbitMQ killed (SIGKILL)")
        return True

    def _running_version(self) -> str:
        """The version whose node last started in this directory (``_write_config`` records it)."""
        try:
            return (self.dir / "version").read_text().strip()
        except OSError:
            return HOST_VERSION  # written by a kit from before versions: the host's package

    def _epmd(self) -> list[str] | None:
        """The host's epmd, else (no Erlang on the host) the root's, run by a bare chroot (it needs no mounts)."""
        if host := shutil.which("epmd"):
            return [host]
        return ["chroot", str(self.root), "/usr/bin/epmd"] if self.root else None

    def _start_epmd(self) -> None:
        """A node in a root must not start epmd itself: the daemon would keep the root's mount namespace
        (and its mounts) alive after the node. So the kit starts it outside first; the node finds it
        (its VM is told ``-start_epmd false`` in ``_env``)."""
        epmd = self._epmd()
        assert epmd is not None
        subprocess.run([*epmd, "-daemon", "-address", LOOPBACK], env=self._env(), capture_output=True, timeout=30)
        wait_for(lambda: port_open(LOOPBACK, self.settings.ports.epmd), timeout=10, what="epmd to listen")

    def _ensure_kit_user(self, say: Say) -> None:
        """A node first booted with other credentials (an older kit: queuekit/queuekit) gets this
        install's user and password, through rabbitmqctl (the Erlang cookie, not a password)."""
        s = self.settings
        try:
            r = httpx.get(f"{s.mgmt_url}/api/whoami", auth=s.mgmt_auth, timeout=5)
        except httpx.HTTPError:
            return  # not answering yet: start's readiness wait reports it
        if r.status_code != 401:
            return
        say(f"RabbitMQ: setting this install's credentials for user {s.rabbit_user!r}")
        try:
            self.ctl("add_user", s.rabbit_user, stdin=s.rabbit_password + "\n")  # password on stdin, not argv
        except KitError:
            self.ctl("change_password", s.rabbit_user, stdin=s.rabbit_password + "\n")
        self.ctl("set_user_tags", s.rabbit_user, "administrator")
        self.ctl("set_permissions", "-p", "/", s.rabbit_user, ".*", ".*", ".*")

    def ctl(self, *args: str, stdin: str | None = None) -> str:
        """Run rabbitmqctl against our node (same HOME so the same cookie)."""
        done = subprocess.run(self.command("rabbitmqctl", "-n", self.node, *args), input=stdin,
                              env=self._env(), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise KitError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()[:200]}")
        return done.stdout

