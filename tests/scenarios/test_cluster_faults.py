"""Cluster scenarios: a keyed stream through a real fault of its leader, on the real 3-node clusters.

Ids are ``cluster-<broker>-<variant>-<fault>``; ``pytest -k cluster`` selects them
(with the topology and fault-primitive tests). The CI subset runs by default;
``QUEUEKIT_CLUSTER_FULL=1`` runs every case. A case passes when its promise
holds (``lost == 0`` where the variant promises it) and the measurement is
whole: every published record has a verdict and the fault left a gap.
"""
from __future__ import annotations

import json
import os

import pytest

from queuekit.suite.faults import run_cell
from scenarios.cluster_faults import CASES

FULL = os.environ.get("QUEUEKIT_CLUSTER_FULL") == "1"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cluster_fault(cluster_kit, case):
    if case.unsupported:
        pytest.skip(f"cannot run through a fault: {case.unsupported}")
    if not (case.ci or FULL):
        pytest.skip("outside the CI subset: QUEUEKIT_CLUSTER_FULL=1 or `queuekit faults` runs it")
    out = run_cell(cluster_kit, case.probe(cluster_kit), case.fault)
    seen = json.dumps({k: v for k, v in out.as_dict().items() if k != "timeline"})
    assert out.confirmed > 0 and out.consumed > 0, seen
    assert out.confirmed + out.failed == out.published, f"a record without a verdict: {seen}"
    for name, value in case.promise.items():
        assert getattr(out, name) == value, f"{case.why}: {name}={getattr(out, name)} ({seen})"
