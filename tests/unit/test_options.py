"""StackOptions over QUEUEKIT_STACK_OPTIONS: typed fields round-trip; the older ``extra`` shape still reads;
a key nobody knows is refused by name instead of silently ignored."""
from __future__ import annotations

import json

import pytest

from queuekit.core.options import OPTIONS_ENV, StackOptions, options_env, options_from_env, options_from_json


def test_the_env_transport_round_trips_every_typed_field(monkeypatch):
    options = StackOptions(workers=3, queue_type="quorum", transactional=True, long_task="pause-resume",
                           record_lock_ms=5000, session_timeout_ms=6000, stock_framework=True)
    monkeypatch.setenv(OPTIONS_ENV, options_env(options)[OPTIONS_ENV])
    assert options_from_env() == options


def test_the_older_extra_shape_of_a_by_hand_recipe_still_reads():
    raw = json.dumps({"workers": 1, "extra": {"transactional": True, "max_poll_interval_ms": 2000}})
    assert options_from_json(raw) == StackOptions(workers=1, transactional=True, max_poll_interval_ms=2000)


@pytest.mark.parametrize("raw", [json.dumps({"workrs": 2}), json.dumps({"extra": {"record_lock": 5}})])
def test_an_unknown_option_is_refused_by_name(raw):
    with pytest.raises(ValueError, match="unknown option"):
        options_from_json(raw)


def test_by_hand_defaults_when_nothing_is_exported(monkeypatch):
    monkeypatch.delenv(OPTIONS_ENV, raising=False)
    assert options_from_env() == StackOptions()
