"""Cluster scenarios: a keyed stream through a real fault of its leader, on the real 3-node clusters.

Ids are ``cluster-<broker>-<variant>-<fault>``; ``pytest -k cluster`` selects them
(with the topology and fault-primitive tests). The CI subset runs by default;
``QUEUEKIT_CLUSTER_FULL=1`` runs every case. A case passes when its promise
holds (``lost == 0`` where the variant promises it) and the measurement is
whole: every published record has a verdict and the fault left a gap.

Each case starts on a whole cluster: one a heal left split is mended (a node restarted) or, failing
that, formed again once; a case whose probe cannot start on the aged cluster runs once more on a fresh
one (``run_case``, as ``queuekit faults`` does). Either is said in the run's summary, as a warning.
"""
from __future__ import annotations

import json
import os
import warnings

import pytest

from queuekit.brokers.faults import whole_or_fresh
from queuekit.suite.faults import run_case
from scenarios.cluster_faults import CASES

FULL = os.environ.get("QUEUEKIT_CLUSTER_FULL") == "1"
HEAL_NOTES = ("split", "restarting", "fresh cluster")  # run_cell / run_case's notes on mending the cluster


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cluster_fault(cluster_kit, case):
    if case.unsupported:
        pytest.skip(f"cannot run through a fault: {case.unsupported}")
    if not (case.ci or FULL):
        pytest.skip("outside the CI subset: QUEUEKIT_CLUSTER_FULL=1 or `queuekit faults` runs it")
    say = lambda msg: print(f"[{case.id}] {msg}")  # noqa: E731
    if healed := whole_or_fresh(cluster_kit, case.broker, say):  # heal before judging
        warnings.warn(f"{case.id}: before the case, {healed}", stacklevel=1)
    out = run_case(cluster_kit, case, say=say)  # a probe that cannot start: once more on a fresh cluster
    if mended := [note for note in out.notes if any(word in note for word in HEAL_NOTES)]:
        warnings.warn(f"{case.id}: {mended}", stacklevel=1)  # in the run's summary, not only in the JSON
    seen = json.dumps({k: v for k, v in out.as_dict().items() if k != "timeline"})
    assert out.confirmed > 0 and out.consumed > 0, seen
    assert out.confirmed + out.failed == out.published, f"a record without a verdict: {seen}"
    for name, value in case.promise.items():
        assert getattr(out, name) == value, f"{case.why}: {name}={getattr(out, name)} ({seen})"
