"""The kit's rules on a shared Redis, broker-free: the prefix per install, and nothing outside it is ever named."""
from __future__ import annotations

import pytest

from queuekit.core.config import Settings, install_id
from queuekit.core.redis_keys import KeySpace, glob_escape


class Recording:
    """Only what KeySpace.record calls, to see it refuse a foreign name before any command is sent."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def sadd(self, *args) -> None:
        self.calls.append(("sadd", *args))


def test_prefix_is_per_install_on_an_external_redis_and_overridable(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("QUEUEKIT_REDIS_PREFIX", raising=False)
    monkeypatch.delenv("QUEUEKIT_REDIS_URL", raising=False)
    assert Settings.from_env().redis_prefix == "qk:"  # the kit's own server
    monkeypatch.setenv("QUEUEKIT_REDIS_URL", "redis://u:p@redis.example:6379/2")
    shared = Settings.from_env()
    assert shared.external("redis") and shared.redis_url == "redis://u:p@redis.example:6379/2"
    own = install_id(shared.home)
    assert shared.redis_prefix == f"qk:{own}:" and len(own) == 8
    monkeypatch.setenv("QUEUEKIT_REDIS_PREFIX", "team-a:qk:")
    assert Settings.from_env().redis_prefix == "team-a:qk:"


def test_record_refuses_any_name_outside_the_prefix_and_the_registry_itself():
    client = Recording()
    space = KeySpace(client, "qk:ab12:")
    for foreign in ("qk:other:queue", "qk:ab12", "celery", space.registry):
        with pytest.raises(ValueError):
            space.record(space.key("queue"), foreign)
    assert client.calls == []  # nothing was sent for a batch with one foreign name
    space.record(space.key("queue", "signup"))
    assert client.calls == [("sadd", "qk:ab12:keys", "qk:ab12:queue:signup")]
    with pytest.raises(ValueError):
        KeySpace(client, "")


def test_glob_escape_makes_a_prefix_literal_in_scan_match():
    assert glob_escape("qk:a*b?[c]\\:") == "qk:a\\*b\\?\\[c\\]\\\\:"


def test_an_external_kit_checks_a_redis_only_when_a_url_names_one(tmp_path, monkeypatch):
    from queuekit import brokers
    from queuekit.brokers.external import External

    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("QUEUEKIT_REDIS_URL", raising=False)
    local = Settings.from_env().with_(mode="local")
    assert "redis" in [c.name for c in brokers.components(local)]
    external = local.with_(mode="external")
    assert "redis" not in [c.name for c in brokers.components(external)]  # nothing to check, nothing to start
    named = external.with_(external_redis_url="redis://u:p@127.0.0.1:1/0")
    [redis_component] = [c for c in brokers.components(named) if c.name == "redis"]
    assert isinstance(redis_component, External)  # checked and used, never started or stopped
