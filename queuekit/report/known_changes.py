"""What RabbitMQ changed between versions that a cell of the matrix can show, each with its source: data.

The report's "what changes from 3.10 to 4.x" section (``versions.py``) looks every differing cell up here
by scenario and changed number; a cell no entry explains says "unexplained" (a race on a loaded machine,
or a change nobody has traced yet: either way a lead, not a finding). An entry applies when the version
that introduced the change lies after the older run's version and at or before the newer one's.
Only changes the kit's stacks actually meet belong here; each was read in the release notes or issue
linked, and the ones marked "observed" are asserted on real nodes in tests/brokers/test_rabbitmq4.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from queuekit.stacks.capabilities import series


@dataclass(frozen=True)
class KnownChange:
    since: str  # the RabbitMQ series that introduced it ("4.0")
    scenarios: tuple[str, ...]  # the scenarios whose cells it can change
    metrics: tuple[str, ...]  # the numbers it can change; () = any number of those scenarios
    what: str  # one sentence: what changed, and how the cell shows it
    source: str  # the release note or upstream issue
    # Only where the stack declares the new behaviour on the newer version (its capabilities, and so the
    # cell's expectation, differ between the versions): a feature the stack must use to be affected.
    declared: bool = False
    # Only where the cell ran with this option unset (None): a default the kit otherwise overrides.
    option_unset: str | None = None


KNOWN: tuple[KnownChange, ...] = (
    KnownChange(
        "3.11", ("work-distribution", "more-consumers-than-partitions", "ordering-per-key", "rebalance",
                 "poison-crash-loop", "duplicate-delivery", "crash-mid-task-early-ack", "lease-expiry", "long-task",
                 "long-task-pause-resume"), (),
        "streams gain single active consumer and super streams (partitioned streams): readers of one stream can "
        "share it instead of each reading everything (rabbitmq_stream on >= 3.11: a super stream per entry stream, "
        "one active reader per partition and service; observed)",
        "https://github.com/rabbitmq/rabbitmq-server/releases/tag/v3.11.0", declared=True),
    KnownChange(
        "4.0", ("poison-crash-loop",),
        ("attempts", "ended", "dead_letters", "dead_letter_reason", "redelivered_after_each_kill"),
        "quorum queues get a default delivery limit of 20 (the kit sets its own x-delivery-limit on its quorum "
        "queues, so only a queue declared without one changes: returned for ever on 3.10, dead-lettered or "
        "dropped after 20 returns on 4.x; observed)",
        "https://github.com/rabbitmq/rabbitmq-server/releases/tag/v4.0.1", option_unset="delivery_limit"),
    KnownChange(
        "4.0", ("back-pressure", "crash-mid-task-prefetch"),
        ("max_in_flight_per_consumer", "effects", "lost", "duplicates"),
        "kombu >= 5.6 sets a per-consumer prefetch instead of global QoS on RabbitMQ >= 4.0 "
        "(qos_semantics_matches_spec), so a Celery worker consuming several queues on one channel may hold "
        "prefetch per queue rather than in all",
        "https://github.com/celery/kombu/pull/2481"),
    KnownChange(
        "4.3", ("poison-crash-loop",), ("attempts", "ended", "dead_letters", "redelivered_after_each_kill"),
        "the quorum delivery limit counts delivery-count: basic.reject raises it, basic.nack(requeue) does not "
        "(a nacked message comes back for ever; observed)",
        "https://github.com/rabbitmq/rabbitmq-server/pull/15387"),
    KnownChange(
        "4.3", ("broker-restart",), (),
        "Mnesia and cluster_partition_handling are removed: metadata lives in Khepri (Raft), the default for "
        "new clusters since 4.2",
        "https://github.com/rabbitmq/rabbitmq-server/releases/tag/v4.3.0"),
)


def explain(row: dict, before: str, after: str) -> list[KnownChange]:
    """The known changes between versions ``before`` and ``after`` that can explain a differing cell: ``row``
    holds its ``scenario``, the numbers that ``changed``, whether its ``expected`` values differ between the
    versions (``expectation_changed``) and the ``options`` it ran with on the newer one."""
    low, high = sorted((series(before), series(after)))
    changed, options = row.get("changed") or [], row.get("options") or {}
    return [k for k in KNOWN
            if row["scenario"] in k.scenarios and low < series(k.since) <= high
            and (not k.metrics or not changed or set(changed) & set(k.metrics))
            and (not k.declared or row.get("expectation_changed"))
            and (k.option_unset is None or options.get(k.option_unset, "") is None)]
