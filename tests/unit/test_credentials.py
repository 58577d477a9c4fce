"""Per-install credentials: random, generated once, owner-only, and the environment still wins."""
from __future__ import annotations

import json

from queuekit.core.config import Settings, install_credentials

NAMES = ("QUEUEKIT_RABBIT_USER", "QUEUEKIT_RABBIT_PASSWORD", "QUEUEKIT_FLOWER_USER", "QUEUEKIT_FLOWER_PASSWORD")


def test_generated_once_per_home_owner_only(tmp_path):
    first = install_credentials(tmp_path / "a")
    assert install_credentials(tmp_path / "a") == first  # read back, not regenerated
    assert install_credentials(tmp_path / "b")["rabbit_password"] != first["rabbit_password"]
    assert len(first["rabbit_password"]) >= 24 and first["rabbit_password"] != "queuekit"
    path = tmp_path / "a" / "credentials.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == "0o700"
    assert json.loads(path.read_text()) == first


def test_settings_use_them_unless_the_environment_says_otherwise(tmp_path, monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))
    s = Settings.from_env()
    assert (s.rabbit_user, s.rabbit_password) == (install_credentials(tmp_path)["rabbit_user"],
                                                 install_credentials(tmp_path)["rabbit_password"])
    assert s.flower_password == install_credentials(tmp_path)["flower_password"]
    monkeypatch.setenv("QUEUEKIT_RABBIT_PASSWORD", "from-env")
    assert Settings.from_env().rabbit_password == "from-env"


def test_an_older_installs_file_gains_the_redis_user_and_keeps_the_rest(tmp_path):
    home = tmp_path / "old"
    home.mkdir()
    older = {"rabbit_user": "queuekit", "rabbit_password": "seeded-a-node", "flower_user": "queuekit",
             "flower_password": "f"}
    (home / "credentials.json").write_text(json.dumps(older))
    creds = install_credentials(home)
    assert {k: creds[k] for k in older} == older  # the RabbitMQ password still opens the node it seeded
    assert len(creds["redis_password"]) >= 24 and creds["redis_user"] == "queuekit"
    assert install_credentials(home) == creds  # added once, then read back
    assert oct((home / "credentials.json").stat().st_mode & 0o777) == "0o600"
