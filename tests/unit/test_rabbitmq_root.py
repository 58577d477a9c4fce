"""RabbitMQ 4.x's Debian root, without building one: the version setting, the mirror, the command line,
and the versions a report's header names (the real node: tests/brokers/test_rabbitmq4.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from queuekit.brokers.rabbitmq import RABBIT_BIN, RabbitMQ
from queuekit.brokers.rabbitmq_root import NEWEST_4, RELEASES, in_root, resolve_version
from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.report import markdown
from queuekit.report.meaning import broker_versions


def test_four_means_the_newest_4x_and_an_unknown_version_is_refused_naming_the_choices():
    assert resolve_version("4") == NEWEST_4 and NEWEST_4 in RELEASES
    assert resolve_version("3.10") == "3.10" and resolve_version("4.0") == "4.0"
    with pytest.raises(KitError) as err:
        resolve_version("3.13")
    assert "3.13" in str(err.value) and "4.3" in err.value.fix


def test_the_host_version_runs_the_host_scripts_and_4x_runs_them_in_its_root(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    host = RabbitMQ(Settings.from_env())
    assert host.root is None and host.command("rabbitmqctl", "status")[0].endswith("/rabbitmqctl")
    monkeypatch.setenv("QUEUEKIT_RABBITMQ_VERSION", "4.0")
    node = RabbitMQ(Settings.from_env())
    argv = node.command("rabbitmqctl", "status")
    assert node.root == tmp_path / "cache" / "rabbitmq-4.0-root"
    # a private mount namespace, the node's own directory at the same path inside, then chroot
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--fork"]
    assert argv[argv.index(str(node.root)) + 1] == str(node.dir)
    assert argv[-2:] == [str(RABBIT_BIN / "rabbitmqctl"), "status"]  # the same script, the root's copy


def test_in_root_separates_mounts_from_the_command():
    argv = in_root(Path("/r"), [Path("/a"), Path("/b")], ["cmd", "--", "x"])
    tail = argv[argv.index("/r"):]
    assert tail == ["/r", "/a", "/b", "--", "cmd", "--", "x"]  # the script stops at the first "--"


def test_the_report_header_names_the_broker_versions_and_a_root():
    results = {"started": "t", "seconds": 1.0, "stacks": [], "scenarios": [], "cells": [],
               "environment": {"brokers": {
                   "rabbitmq": {"version": "4.3.6", "detail": "Debian sid root, rabbitmq-server 4.3.6-1"},
                   "kafka": {"version": "4.4.0"}}}}
    assert broker_versions(results) == "rabbitmq 4.3.6 (Debian sid root, rabbitmq-server 4.3.6-1), kafka 4.4.0"
    assert "(brokers: rabbitmq 4.3.6 (Debian sid root" in markdown(results)


def _results(version: str, poison_dead: int, ok: bool) -> dict:
    cell = {"scenario": "poison-to-dlq", "stack": "celery_quorum", "observed": {"dead_letters": poison_dead, "lost": 0},
            "expected": {"dead_letters": "== 1", "lost": "== 0"}, "mismatches": [] if ok else ["dead_letters"],
            "error": None}
    same = {"scenario": "fan-out", "stack": "celery", "observed": {"lost": 0}, "expected": {"lost": "== 0"},
            "mismatches": [], "error": None}
    return {"stacks": ["celery", "celery_quorum"], "scenarios": [], "cells": [cell, same],
            "environment": {"brokers": {"rabbitmq": {"version": version}}}}


def test_version_changes_lists_only_the_cells_that_differ_with_both_versions_named():
    from queuekit.report.versions import version_changes, version_section

    before, after = _results("3.10.8", 1, True), _results("4.3.6", 0, False)
    rows = version_changes(before, after)
    assert [(r["scenario"], r["stack"], r["changed"]) for r in rows] == [("poison-to-dlq", "celery_quorum",
                                                                         ["dead_letters"])]
    text = version_section(before, after)
    assert text.startswith("## What changes from rabbitmq 3.10.8 to rabbitmq 4.3.6")
    assert "1 cells differ, 1 are the same" in text and "**dead_letters=0**" in text
    assert version_changes(before, _results("4.3.6", 1, True)) == []  # same observations: no row
