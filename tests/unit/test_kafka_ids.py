"""The KRaft cluster id ``queuekit up`` formats storage with never looks like an option to StorageTool."""
from __future__ import annotations

import re

from queuekit.brokers.kafka import new_cluster_id


def test_cluster_ids_are_kafka_shaped_and_never_start_with_a_dash():
    ids = [new_cluster_id() for _ in range(5000)]  # a leading "-" comes 1 in 64 draws: ~78 expected without the check
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids), [i for i in ids if i[0] == "-"][:3]
    assert len(set(ids)) == len(ids)
