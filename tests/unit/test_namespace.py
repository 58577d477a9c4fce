"""An install's own namespace on an external broker (derived from its install id) and its manifest (no brokers)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from queuekit.core.config import Settings, install_id, kafka_prefix
from queuekit.core.errors import KitError
from queuekit.stacks.manifest import KitObject, Manifest, owned, record

EXTERNAL = {"QUEUEKIT_BROKERS": "external", "QUEUEKIT_AMQP_URL": "amqp://u:p@127.0.0.1:5672/",
            "QUEUEKIT_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
NAMESPACE = ("QUEUEKIT_KAFKA_PREFIX", "QUEUEKIT_KAFKA_SHARE_PREFIX", "QUEUEKIT_RABBIT_VHOST", "QUEUEKIT_BROKERS",
             "QUEUEKIT_AMQP_URL", "QUEUEKIT_KAFKA_BOOTSTRAP")


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in NAMESPACE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_install_id_is_made_once_per_home_owner_only(tmp_path):
    first = install_id(tmp_path / "a")
    assert install_id(tmp_path / "a") == first and len(first) == 8
    assert install_id(tmp_path / "b") != first
    assert oct((tmp_path / "a" / "install-id").stat().st_mode & 0o777) == "0o600"


def test_own_brokers_keep_the_plain_names(home):
    assert kafka_prefix() == "qk." and kafka_prefix("QUEUEKIT_KAFKA_SHARE_PREFIX", "qks.") == "qks."
    assert Settings.from_env().vhost == "/"


def test_an_external_broker_gets_the_installs_own_vhost_and_prefixes(home, monkeypatch):
    for name, value in EXTERNAL.items():
        monkeypatch.setenv(name, value)
    ident = install_id(home)
    assert Settings.from_env().vhost == f"queuekit-{ident}"
    assert kafka_prefix() == f"qk-{ident}." and kafka_prefix("QUEUEKIT_KAFKA_SHARE_PREFIX", "qks.") == f"qks-{ident}."
    monkeypatch.setenv("QUEUEKIT_KAFKA_PREFIX", "team-a.")  # an explicit namespace still wins
    monkeypatch.setenv("QUEUEKIT_RABBIT_VHOST", "team-a")
    assert kafka_prefix() == "team-a." and Settings.from_env().vhost == "team-a"


@pytest.mark.parametrize("module, attr", [("kafka_app.topology", "PREFIX"), ("kafka_share_app.topology", "PREFIX"),
                                          ("celery_app.topology", "PREFIX")])
def test_every_kafka_stack_names_its_objects_in_the_namespace(home, monkeypatch, module, attr):
    """What a worker process computes at import (a fresh interpreter, as a worker starts): celery_kafka too."""
    for name, value in EXTERNAL.items():
        monkeypatch.setenv(name, value)
    ident = install_id(home)
    got = subprocess.run([sys.executable, "-c", f"import {module} as m; print(m.{attr})"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert got.startswith((f"qk-{ident}.", f"qks-{ident}.")), got


def test_the_manifest_records_on_external_brokers_only_and_owns_what_it_recorded(home, monkeypatch):
    topic, foreign = KitObject("kafka", "topic", "qk-x.signup"), KitObject("kafka", "topic", "qk-x.orders")
    record(Settings.from_env(), [topic])  # the kit's own broker: everything is the kit's, nothing recorded
    assert not (home / "manifest.json").exists()
    assert owned(Settings.from_env(), [topic, foreign]) == [topic, foreign]
    for name, value in EXTERNAL.items():
        monkeypatch.setenv(name, value)
    s = Settings.from_env()
    record(s, [topic, topic])
    assert json.loads((home / "manifest.json").read_text()) == [
        {"broker": "kafka", "at": "127.0.0.1:9092", "kind": "topic", "name": "qk-x.signup"}]
    assert oct((home / "manifest.json").stat().st_mode & 0o777) == "0o600"
    assert owned(s, [topic, foreign]) == [topic]  # by name: a neighbour sharing the prefix is not ours
    Manifest(s).forget([topic])
    assert owned(s, [topic]) == []


def test_a_claim_stops_at_a_name_that_exists_unrecorded_and_records_the_rest(home, monkeypatch):
    """The decision alone (the broker's listing given): tests/e2e/test_two_kits.py runs it on real brokers."""
    for name, value in EXTERNAL.items():
        monkeypatch.setenv(name, value)
    s = Settings.from_env()
    ours, foreign = KitObject("kafka", "topic", "qk-x.signup"), KitObject("kafka", "topic", "qk.signup")
    manifest = Manifest(s)
    manifest.claim([ours], lambda brokers: {"kafka": set()})
    manifest.claim([ours], lambda brokers: {"kafka": {("topic", "qk-x.signup")}})  # now it exists: it is ours
    with pytest.raises(KitError) as raised:
        manifest.claim([ours, foreign], lambda brokers: {"kafka": {("topic", "qk.signup")}})
    assert "'qk.signup'" in str(raised.value) and "QUEUEKIT_KAFKA_PREFIX" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert manifest.recorded([ours, foreign]) == [ours]  # nothing of a refused claim was recorded
