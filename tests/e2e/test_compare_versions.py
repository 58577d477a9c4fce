"""`queuekit compare --rabbitmq 3.10,4` end to end on a small slice: the RabbitMQ columns on both versions in
one run, the Kafka column once, each version on record, the "what changes" section in both reports, and the
4.x node compare started stopped again (``queuekit down`` does not know it).

Needs the 4.x root (built on first use, like tests/brokers/test_rabbitmq4.py): skipped without root or
mmdebstrap on a developer's machine, failed under CI=true.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from queuekit.brokers.process import port_open
from queuekit.brokers.rabbitmq_root import NEWEST_4, beside, why_not_runnable
from queuekit.core.config import LOOPBACK


def test_one_compare_runs_the_rabbitmq_columns_on_both_versions_and_says_what_changes(kit, tmp_path):
    if kit.mode != "local" or kit.external_amqp_url:
        pytest.skip("the kit's own RabbitMQ nodes: not applicable to external brokers")
    if why := why_not_runnable(kit, NEWEST_4):
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    node = beside(kit, NEWEST_4)
    was_up = port_open(LOOPBACK, node.ports.amqp)  # e.g. a developer's own: compare reuses it and leaves it up
    done = subprocess.run(
        [sys.executable, "-m", "queuekit", "compare", "--rabbitmq", "3.10,4", "--stack", "dramatiq_quorum",
         "--stack", "kafka", "--scenario", "replay", "--format", "json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    column = f"dramatiq_quorum@{NEWEST_4}"
    assert results["stacks"] == ["dramatiq_quorum", "kafka", column]  # Kafka does not depend on RabbitMQ's version
    cells = {c["stack"]: c for c in results["cells"]}
    assert cells[column]["observed"]["replayed"] == 0 and not cells[column]["error"]  # a queue forgets on 4.x too
    brokers = results["environment"]["brokers"]
    assert brokers["rabbitmq"]["version"].startswith("3.10.")
    assert brokers[f"rabbitmq@{NEWEST_4}"]["version"].startswith(NEWEST_4 + ".")
    assert results["families"][column] == f"rabbitmq@{NEWEST_4}"  # its own group of columns in the report
    [run] = list(tmp_path.iterdir())
    report = (run / "report.md").read_text()
    assert f"## What changes from rabbitmq {brokers['rabbitmq']['version']} to rabbitmq " \
           f"{brokers[f'rabbitmq@{NEWEST_4}']['version']}" in report
    assert "cells differ" in report and f'id="versions-{brokers[f"rabbitmq@{NEWEST_4}"]["version"]}"' \
        in (run / "report.html").read_text()
    assert port_open(LOOPBACK, node.ports.amqp) == was_up  # started by compare: stopped by it
