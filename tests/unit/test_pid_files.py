"""Pid files that cannot kill a stranger: ``ManagedProcess`` signals only the process it started."""
from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from queuekit.brokers.process import ManagedProcess

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def stranger():
    """A process the kit did not start (another user's program, as far as the kit knows)."""
    proc = subprocess.Popen(SLEEPER)
    yield proc
    proc.kill()
    proc.wait()


def test_stop_kills_what_it_started(tmp_path):
    managed = ManagedProcess("sleeper", tmp_path / "sleeper")
    pid = managed.spawn(SLEEPER)
    identity = json.loads(managed.identity_file.read_text())
    assert identity["pid"] == pid and identity["cmdline"] == SLEEPER
    assert oct(managed.directory.stat().st_mode & 0o777) == "0o700"
    assert managed.pid() == pid
    assert managed.stop(timeout=10)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not managed.pid_file.exists() and not managed.identity_file.exists()


def test_a_pid_file_naming_a_stranger_is_stale(tmp_path, stranger):
    managed = ManagedProcess("sleeper", tmp_path / "sleeper")
    managed.spawn(SLEEPER)
    managed.stop(timeout=10)
    # the pid is reused by someone else: same pid file content, identity of the process we started
    managed.identity_file.write_text(json.dumps({"pid": stranger.pid, "create_time": 1.0, "cmdline": SLEEPER}))
    managed.pid_file.write_text(str(stranger.pid))
    assert managed.pid() is None  # not ours: a different start time
    assert managed.stop(timeout=1) is False
    assert stranger.poll() is None  # alive
    assert not managed.pid_file.exists()


def test_a_legacy_pid_file_is_trusted_only_inside_our_directory(tmp_path, stranger):
    managed = ManagedProcess("sleeper", tmp_path / "sleeper")
    managed.directory.mkdir(parents=True)
    managed.pid_file.write_text(str(stranger.pid))  # an older kit's pid file: no identity beside it
    assert managed.pid() is None and managed.stop(timeout=1) is False
    assert stranger.poll() is None
