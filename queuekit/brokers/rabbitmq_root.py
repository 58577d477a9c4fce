"""RabbitMQ 4.x: a Debian root the kit builds once (mmdebstrap) and runs a node in (unshare + chroot).

Debian 12 ships RabbitMQ 3.10; 4.x needs an Erlang (27+) whose ``beam.smp`` needs a newer glibc than
the host's, so it cannot be installed beside it. Instead the kit builds a minimal root filesystem
of a newer Debian (``--variant=apt``: apt, dpkg and rabbitmq-server with its dependencies) from the
host's own Debian mirror, caches it under ``$QUEUEKIT_HOME/cache/rabbitmq-<version>-root`` like the
Kafka jars, and runs the node inside it: a private mount namespace (``unshare --mount``) with
/proc, /dev and the node's own directory mounted into the root, then ``chroot``. The mounts belong
to that namespace, so they vanish with its last process, even a SIGKILLed one; the network is the
host's (same loopback ports, same cluster namespaces).

  QUEUEKIT_RABBITMQ_VERSION   3.10 (default: the host's package) | 4.0 (Debian 13 trixie) |
                              4.3 (Debian unstable) | 4 (the newest of these that works here)
  QUEUEKIT_DEBIAN_MIRROR      the mirror to build from (default: the host's apt sources)
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from queuekit.core.config import Ports, Settings
from queuekit.core.errors import KitError

from .base import Say

HOST_VERSION = "3.10"  # Debian 12's rabbitmq-server, installed on the host with apt


@dataclass(frozen=True)
class Release:
    """A RabbitMQ series and the Debian suite whose rabbitmq-server package carries it."""

    version: str  # "4.0": what the setting names and the package version must start with
    suite: str  # the Debian suite mmdebstrap builds from


RELEASES = {r.version: r for r in (Release("4.0", "trixie"), Release("4.3", "sid"))}
NEWEST_4 = "4.3"  # what "4" means: the newest series whose node starts and passes the kit's CI test here
MARKER = "queuekit-root.json"  # written last into the staging dir: a root without it was never finished
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOSTS = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"


def resolve_version(wanted: str) -> str:
    """The series a setting names ("4" is the newest 4.x); a clear error for one the kit cannot run."""
    version = NEWEST_4 if wanted == "4" else wanted
    if version != HOST_VERSION and version not in RELEASES:
        raise KitError(f"QUEUEKIT_RABBITMQ_VERSION={wanted!r} is not a version the kit runs",
                       f"choose from {', '.join([HOST_VERSION, *RELEASES, '4'])}")
    return version


BESIDE_STEP = 200  # a node of another version runs this many ports above the kit's (one step per extra version)


def beside(settings: Settings, version: str, step: int = 1) -> Settings:
    """The settings of a RabbitMQ ``version`` node beside the kit's own: ports ``BESIDE_STEP * step`` above
    it and its own run directory (``run-<offset>``), so both run at once. ``compare --rabbitmq 3.10,4`` and
    tests/brokers/test_rabbitmq4.py put their 4.x node there."""
    offset = settings.port_offset + BESIDE_STEP * step
    return settings.with_(port_offset=offset, ports=Ports.offset_by(offset),
                          rabbitmq_version=resolve_version(version))


def why_not_runnable(settings: Settings, version: str) -> str | None:
    """None when the kit can run ``version`` here (the host's package, a cached root, or one it can build:
    root, mmdebstrap, unshare and chroot); else why not, in a sentence."""
    version = resolve_version(version)
    if version == HOST_VERSION or (root_dir(settings, version) / MARKER).exists():
        return None
    if os.geteuid() != 0:
        return f"RabbitMQ {version} runs chrooted in a Debian root, which needs root"
    missing = [tool for tool in ("mmdebstrap", "unshare", "chroot") if not shutil.which(tool)]
    return f"RabbitMQ {version}'s root is built with {', '.join(missing)}, not installed" if missing else None


def root_dir(settings: Settings, version: str) -> Path:
    return settings.cache_dir / f"rabbitmq-{version}-root"


def root_info(settings: Settings, version: str) -> dict | None:
    """What the finished root records about itself (package version, suite, build time), or None."""
    try:
        return json.loads((root_dir(settings, version) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (deb822 ``URIs:`` or a one-line ``deb`` entry), not -security."""
    if mirror := os.environ.get("QUEUEKIT_DEBIAN_MIRROR"):
        return mirror
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        found = re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
        for uri in found:
            if "security" not in uri and uri.startswith(("http://", "https://")):
                return uri
    return DEFAULT_MIRROR


def provision_root(settings: Settings, version: str, say: Say) -> Path:
    """The cached root of ``version``, built first if missing: in a staging dir renamed into place
    when complete, under a lock so two kits never build the same root at once."""
    release = RELEASES[version]
    root = root_dir(settings, version)
    if (root / MARKER).exists():
        return root
    mmdebstrap = shutil.which("mmdebstrap")
    if not mmdebstrap or not shutil.which("unshare") or not shutil.which("chroot"):
        raise KitError(f"RabbitMQ {version} is built into a Debian root with mmdebstrap, which is not installed",
                       "run: apt-get install -y mmdebstrap (util-linux gives unshare, coreutils chroot)")
    if os.geteuid() != 0:  # chroot and mount need root; a rootless build would still need them to run
        raise KitError(f"building and running RabbitMQ {version} needs root (chroot, mount namespaces)",
                       "run as root, or use QUEUEKIT_RABBITMQ_VERSION=3.10 (the host's package)")
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.cache_dir / f"rabbitmq-{version}-root.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another kit is building the RabbitMQ {version} root; waiting for it…")
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when that build ends, finished or not
        if (root / MARKER).exists():  # the other kit finished it
            return root
        for stale in settings.cache_dir.glob(f".rabbitmq-{version}-root.staging-*"):
            shutil.rmtree(stale, ignore_errors=True)  # a build that died: we hold the lock, nobody uses it
        staging = settings.cache_dir / f".rabbitmq-{version}-root.staging-{os.getpid()}"
        mirror, t0 = host_mirror(), time.monotonic()
        say(f"building the RabbitMQ {version} root: Debian {release.suite} from {mirror} "
            f"(once; a few minutes) into {root}")
        _mmdebstrap(mmdebstrap, release.suite, staging, mirror, say)
        hosts = staging / "etc" / "hosts"
        if not hosts.exists():  # unstable's minimal root has none (netbase is not pulled in): the node's
            hosts.write_text(HOSTS)  # short name queuekit@localhost must resolve, or epmd fails with nxdomain
        package = _package_version(staging, "rabbitmq-server")
        if not package.startswith(version + "."):
            shutil.rmtree(staging, ignore_errors=True)
            raise KitError(f"Debian {release.suite} carries rabbitmq-server {package}, not {version}.x",
                           f"update NEWEST_4/RELEASES in {__name__}, or choose another version")
        info = {"rabbitmq_server": package, "erlang": _package_version(staging, "erlang-base"),
                "suite": release.suite, "mirror": mirror, "seconds": round(time.monotonic() - t0, 1),
                "built": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (staging / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        os.rename(staging, root)  # atomic: a reader sees no root or a whole one
        say(f"RabbitMQ {package} (Erlang {info['erlang']}) root ready in {info['seconds']} s")
        return root


def _mmdebstrap(mmdebstrap: str, suite: str, target: Path, mirror: str, say: Say) -> None:
    """Build the root, passing mmdebstrap's own progress lines (``I: …``) on to the person waiting."""
    argv = [mmdebstrap, "--variant=apt", "--include=rabbitmq-server", "--format=directory",
            # Unstable's Release file is valid for a week: a snapshot mirror (this machine's) serves an
            # "expired" one. The signature is still checked; only the freshness date is not.
            '--aptopt=Acquire::Check-Valid-Until "false"', suite, str(target), mirror]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tail: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        line = line.rstrip()
        tail = [*tail[-9:], line]
        if line.startswith(("I: ", "E: ", "W: ")):
            say(f"  mmdebstrap {line}")
    if proc.wait() != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise KitError(f"mmdebstrap {suite} failed (exit {proc.returncode}): {' | '.join(tail[-3:])}",
                       f"is {mirror} reachable? set QUEUEKIT_DEBIAN_MIRROR to a reachable Debian mirror")


def _package_version(root: Path, package: str) -> str:
    done = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Version}", package],
                          capture_output=True, text=True)
    return done.stdout.strip() or "missing"


# Runs inside the new mount namespace, before chroot: mount what the node needs into the root.
# Positional arguments: ROOT, the host directories to mount at the same path inside, "--", the command.
IN_ROOT = r"""set -eu
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
while [ "$1" != -- ]; do mkdir -p "$root$1"; mount --bind "$1" "$root$1"; shift; done
shift
exec chroot "$root" "$@"
"""


def in_root(root: Path, binds: list[Path], argv: list[str]) -> list[str]:
    """``argv`` run inside ``root`` with ``binds`` (host directories) at the same paths.

    ``unshare --mount`` makes a private mount namespace (propagation private: nothing reaches the
    host's mount table); ``--fork`` so the namespace's first process is the shell, and the node
    becomes its child by exec. When the last process in the namespace exits, the kernel drops it and
    every mount in it: no cleanup step to miss, even after SIGKILL.
    """
    return ["unshare", "--mount", "--propagation", "private", "--fork", "--",
            "sh", "-c", IN_ROOT, "sh", str(root), *map(str, binds), "--", *argv]
