"""Flower watches the Celery stacks: task states (success, retry, failure) and the worker by name.

The kit's Flower watches ``celery`` on RabbitMQ, its second Flower (``flower-redis``) ``celery_redis`` on Redis.
"""
from __future__ import annotations

import httpx
import pytest

from queuekit.core.envelope import make_envelope
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.registry import load_stack
from workloads import WORKLOADS


@pytest.mark.parametrize("name", ["celery", "celery_redis"])
def test_flower_reports_task_states_and_worker_names(name, kit, tmp_path):
    flower_url = kit.flower_redis_url if name == "celery_redis" else kit.flower_url
    ledger = Ledger(tmp_path / "ledger.db")
    ok_msg, retry_msg, fail_msg = WORKLOADS["signup"].make_messages(3, seed=404)
    envelopes = [make_envelope(m, h) for m, h in ((ok_msg, {}), (retry_msg, {"fault": "fail-times", "n": 1}),
                                                  (fail_msg, {"fault": "always-fail"}))]
    stack = load_stack(name)(kit, ledger.path)
    stack.reset()
    stack.start(["signup"], StackOptions(workers=1, max_retries=2, backoff_ms=100))
    try:
        stack.publish("signup", envelopes)

        def tasks_seen() -> dict[str, dict]:
            r = httpx.get(f"{flower_url}/api/tasks", auth=kit.flower_auth, timeout=10)
            r.raise_for_status()
            return {env.id: task for task in r.json().values() for env in envelopes
                    if env.id in (task.get("args") or "")}

        def settled() -> dict[str, dict] | None:
            seen = tasks_seen()
            done = len(seen) == 3 and all(t["state"] in ("SUCCESS", "FAILURE") for t in seen.values())
            return seen if done else None

        seen = wait_for(settled, timeout=60, what="Flower to report our three tasks finished",
                        describe=lambda: str({k: v["state"] for k, v in tasks_seen().items()}))
        ok, retried, failed = (seen[env.id] for env in envelopes)
        assert ok["state"] == "SUCCESS" and ok["retries"] == 0
        # Celery retries under the same task id: Flower shows the final state and the retry count.
        assert retried["state"] == "SUCCESS" and retried["retries"] == 1 and retried["retried"]
        assert failed["state"] == "FAILURE" and "injected permanent failure" in failed["exception"]
        assert {t["worker"] for t in seen.values()} == {next(iter(seen.values()))["worker"]}
        assert ok["worker"].startswith(f"{name}-0@")  # the worker by the name the kit gave it
    finally:
        stack.stop()
