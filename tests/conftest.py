"""Shared fixtures: the real brokers (started once per session when not already running), a ledger, fresh stacks.

Shared helpers (message builders, malformed payloads) live in ``tests/helpers.py``."""
from __future__ import annotations

import fcntl
import os

import pytest

from queuekit import brokers
from queuekit.core.config import Settings
from queuekit.core.errors import KitError
from queuekit.core.ledger import Ledger
from queuekit.stacks.registry import load_stack


@pytest.fixture(scope="session")
def kit() -> Settings:
    """Brokers for the whole session: reuse running ones, start the rest, stop only those at the end.

    When they cannot start: under CI=true the test fails with the reason (CI
    must not go green by skipping); on a developer's machine it is skipped.
    """
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        with open(settings.home / "pytest-up.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # pytest -n <lanes>: one worker starts the brokers, the others find them up
            started = brokers.up(settings, say=lambda msg: print(f"[queuekit] {msg}"))
    except KitError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"brokers could not start: {exc}", pytrace=False)
        pytest.skip(f"brokers could not start: {exc}")
    yield settings
    # Only what this session started; brokers it found running stay up. Under xdist another worker may
    # still be using them: they stay up (queuekit down stops them).
    if started and not os.environ.get("PYTEST_XDIST_WORKER"):
        brokers.down(settings, tuple(started))


@pytest.fixture(scope="session")
def cluster_kit() -> Settings:
    """The cluster topology (3 RabbitMQ + 3 Kafka nodes) for the session, beside the single nodes.

    Same rules as ``kit``; it runs on its own namespaces and addresses, so both can be up.
    """
    settings = Settings.from_env().with_(topology="cluster")
    if settings.mode != "local" or settings.external_amqp_url or settings.external_kafka_bootstrap:
        pytest.skip("the cluster topology is started by the kit; not applicable to external brokers")
    try:
        started = brokers.up(settings, say=lambda msg: print(f"[queuekit cluster] {msg}"))
    except KitError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the cluster could not start: {exc}", pytrace=False)
        pytest.skip(f"the cluster could not start: {exc}")
    yield settings
    if started:
        brokers.down(settings, tuple(started))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything that uses the real brokers carries the `brokers` marker, so
    # `pytest -m "not brokers"` is the fast, broker-free subset.
    for item in items:
        if {"kit", "cluster_kit"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.brokers)
    # `down` of the cluster is tested once, after every test that uses it.
    items.sort(key=lambda item: item.get_closest_marker("cluster_down") is not None)


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.db")


@pytest.fixture
def fresh_stack(kit, ledger):
    """``fresh_stack("celery")``: a reset stack on this test's ledger, stopped after the test."""
    made = []

    def make(name: str):
        instance = load_stack(name)(kit, ledger.path)
        instance.reset()
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop()


# -- broker lanes under xdist ------------------------------------------------------------------------
# ``make test`` runs the per-stack suites (contract, stacks, scenarios) and the cluster tests with
# ``pytest -n <lanes>`` (``lane_count``): one worker per lane. Tests of a RabbitMQ stack, of a Kafka stack and
# of a Redis stack share no queue, topic, key or process, so they run side by side; the 3-node clusters run
# on namespaces and addresses of their own, so they are one more lane. Tests of one lane run one at a time on
# one worker (they reset that broker).
CLUSTER_LANE = "cluster"


def broker_lane(nodeid: str) -> str:
    """The lane of a test: ``cluster`` for the cluster topology (a file named ``*cluster*``, or a test named
    ``test_cluster_*``: they use the ``cluster_kit`` fixture); else the broker a test's stack declares
    (``capabilities.broker``), found from the test's id ("…[kafka_share-signup]", "…scenario-replay-celery]")
    or, for a framework-only file whose ids name no stack, from its file name: the longest stack name it
    starts with ("test_kafka_transactions.py": kafka), else a broker it names ("test_rabbitmq_queue_types.py":
    rabbitmq)."""
    from queuekit.brokers import NAMES
    from queuekit.stacks.registry import load_stack, stack_names

    path, _, test = nodeid.partition("::")
    if "cluster" in path.rsplit("/", 1)[-1] or test.startswith("test_cluster_"):
        return CLUSTER_LANE
    names = set(stack_names())
    params = nodeid.partition("[")[2].rstrip("]")
    for token in params.replace("scenario-", "").split("-")[::-1]:  # a scenario id ends with its stack
        if token in names:
            return load_stack(token).capabilities.broker
    stem = nodeid.partition("::")[0].rsplit("/", 1)[-1].removeprefix("test_").removesuffix(".py")
    named = [name for name in names if stem == name or stem.startswith(f"{name}_")]
    if named:
        return load_stack(max(named, key=len)).capabilities.broker
    if broker := next((b for b in NAMES if stem.startswith(f"{b}_")), None):
        return broker
    raise ValueError(f"{nodeid}: no broker lane: name the file test_<stack>_….py or test_<broker>_….py, "
                     f"or put the stack's name in its test ids")


def lane_count() -> int:
    """One xdist worker per lane: every broker a registered stack declares, and the cluster lane
    (``make test`` passes it to ``-n``; a lane with no test selected leaves its worker idle)."""
    from queuekit.stacks.registry import load_stack, stack_names

    return len({load_stack(name).capabilities.broker for name in stack_names()}) + 1


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class BrokerLanes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return broker_lane(nodeid)

    return BrokerLanes(config, log)
