"""Hostile input on every stack: it kills nothing and loses nothing (``pytest -k hostile``).

One stack start per stack, then the whole corpus (``hostile_corpus.CORPUS``) with a good message
before each input and a few after, then the checks: where each input ended (dead letter with
its reason, effect, or refused at publish), that every good message took effect, that nothing
is left unsettled on the broker, and that every worker process is still alive. Workers run as
in production here: WITHOUT the harness's fault switch, so fault directives are a stranger's.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika
import pytest
from confluent_kafka import Producer

from queuekit.core.envelope import encode, make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.core.worker_env import FAULTS_ENV
from queuekit.stacks.registry import STACKS
from workloads.messages import SignupRequested

from hostile_corpus import CORPUS, DROP, Hostile, marker

OPTIONS = StackOptions(workers=2, max_retries=1, backoff_ms=50)
TRAILING_GOOD = 5


def test_the_corpus_is_big_and_covers_every_class():
    assert len(CORPUS) >= 30 and len({h.name for h in CORPUS}) == len(CORPUS)
    assert {h.cls for h in CORPUS} >= {"encoding", "shape", "schema", "protocol", "size", "headers", "directives",
                                        "limits"}
    assert {h.via for h in CORPUS} == {"envelope", "celery", "dramatiq", "kafka"}


@pytest.mark.parametrize("name", list(STACKS))
def test_hostile_inputs(name, fresh_stack, ledger, kit):
    stack = fresh_stack(name)
    _without_faults(stack)
    stack.start(["signup"], OPTIONS)
    wire = Wire(name, stack, kit)
    inputs = [h for h in CORPUS if h.via in ("envelope", name)]
    goods, refused, sent = [], {}, {}
    try:
        for i, item in enumerate(inputs):
            goods.append(_good(stack, f"good-{name}-{i}"))
            for route in (("kit", "wire") if item.via == "envelope" else ("wire",)):
                for _ in range(item.copies):
                    sent[item.name] = sent.get(item.name, 0) + 1
                    try:
                        if route == "kit":
                            stack.publish_raw("signup", item.payload)
                        else:
                            wire.send(item)
                    except Exception as exc:  # noqa: BLE001 - refused at publish: recorded, then checked
                        refused.setdefault(item.name, []).append(f"{route}: {type(exc).__name__}: {exc}"[:160])
        goods += [_good(stack, f"good-{name}-tail-{i}") for i in range(TRAILING_GOOD)]
    finally:
        wire.close()

    expected_dead = {h.name: sent[h.name] for h in inputs if h.end_on(name).startswith("dead")}

    def missing() -> list[str]:
        have = {e.key for e in ledger.effects(service="signup")}
        dead = stack.dead_letters("signup")
        gaps = [f"effect of {k}" for k in goods if k not in have]
        gaps += [f"{n - _count(dead, h)} dead letter(s) of {h}" for h, n in expected_dead.items() if _count(dead, h) < n]
        return gaps

    wait_for(lambda: not missing(), timeout=180, what=f"every good effect and dead letter on {name}",
             describe=lambda: str(missing()[:6]))
    stack.drain("signup", timeout=60)  # nothing left ready or unacked: no message held for good

    dead = stack.dead_letters("signup")
    effects = {e.key for e in ledger.effects(service="signup")}
    table = {h.name: _ended(h, dead, effects, refused) for h in inputs}
    print(f"\nhostile inputs on {name}: " + json.dumps(table, indent=1))
    wrong = {}
    for h in inputs:
        want, got = h.end_on(name), table[h.name]
        if want == "refused":
            ok = len(refused.get(h.name, [])) == sent[h.name]
        elif want == "effect":
            ok = got == "effect" and ledger.duplicates("signup").get(marker(h.name)) is None
        else:
            ok = got.startswith("dead") and want[len("dead: "):] in got and _count(dead, h.name) == sent[h.name]
        if not ok:
            wrong[h.name] = f"expected {want!r}, ended {got!r}"
    assert not wrong, wrong
    unexplained = [d for d in dead if not any(marker(h.name).encode() in (d.payload or b"") for h in inputs)]
    assert not unexplained, [(d.payload[:80], d.reason) for d in unexplained]
    assert all(stack.pool.alive(i) for i in range(OPTIONS.workers)), "a worker died"
    assert not (set(goods) - effects)


def _without_faults(stack) -> None:
    """The workers of this stack start as a deployment would: fault directives off."""
    made = stack.new_pool

    def new_pool(options):
        pool = made(options)
        pool.env[FAULTS_ENV] = "0"
        return pool

    stack.new_pool = new_pool


def _good(stack, key: str) -> str:
    msg = SignupRequested(user_id=1, email="good@example.test", idempotency_key=key)
    report = stack.publish("signup", [make_envelope(msg)])
    assert report.confirmed == 1
    return key


def _count(dead, name: str) -> int:
    needle = marker(name).encode()
    return sum(1 for d in dead if needle in (d.payload or b"") and _same_input(d.payload, name))


def _same_input(payload: bytes, name: str) -> bool:
    """``hostile-x`` must not match ``hostile-x-y``: the marker is followed by a non-name character."""
    needle = marker(name).encode()
    at = payload.find(needle)
    while at >= 0:
        after = payload[at + len(needle):at + len(needle) + 1]
        if not after or not (after.isalnum() or after == b"-"):
            return True
        at = payload.find(needle, at + 1)
    return False


def _ended(h: Hostile, dead, effects: set[str], refused: dict) -> str:
    reasons = sorted({d.reason for d in dead if _same_input(d.payload or b"", h.name)})
    if reasons:
        return "dead: " + " | ".join(r[:120] for r in reasons)
    if marker(h.name) in effects:
        return "effect"
    if h.name in refused:
        return "refused: " + refused[h.name][0]
    return "LOST"


class Wire:
    """Frames straight onto the broker, in the stack's own framing, with pika / confluent-kafka."""

    def __init__(self, name: str, stack, kit):
        self.name, self.stack, self.kit = name, stack, kit
        if name == "kafka":
            self.producer = Producer({"bootstrap.servers": kit.kafka_bootstrap, "message.max.bytes": 2_000_000})
        else:
            self.conn = pika.BlockingConnection(pika.URLParameters(kit.pika_url))
            self.channel = self.conn.channel()
            self.channel.confirm_delivery()  # basic_publish raises on a nack

    def close(self) -> None:
        if self.name == "kafka":
            self.producer.flush(10)
        else:
            self.conn.close()

    def send(self, item: Hostile) -> None:
        getattr(self, f"_{self.name}")(item, item.frame if item.via == self.name else {})

    def _celery(self, item: Hostile, spec: dict) -> None:
        task_id = str(uuid.uuid4())
        arg = item.payload.decode("utf-8", "surrogateescape")
        headers: dict[str, Any] = {
            "lang": "py", "task": "signup", "id": task_id, "shadow": None, "eta": None, "expires": None,
            "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
            "parent_id": None, "argsrepr": "('...',)", "kwargsrepr": "{}", "origin": "hostile@test",
            "ignore_result": False,
        }
        for key, value in spec.get("headers", {}).items():
            headers.pop(key) if value is DROP else headers.__setitem__(key, value)
        embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None, **spec.get("embed", {})}
        body = spec.get("body") or json.dumps([spec.get("args", [arg]), spec.get("kwargs", {}), embed]).encode()
        if spec.get("revoke"):
            self._revoke(task_id)
        self._publish("celery.signup", body, headers, spec.get("content_type", "application/json"))

    def _revoke(self, task_id: str) -> None:
        """Revoke the id and wait until every worker has it in its revoked set."""
        control = self.stack.app.control
        control.revoke(task_id)
        workers = len(self.stack.pool.pids())

        def everyone() -> bool:
            seen = control.inspect(timeout=1.0).revoked() or {}
            return sum(task_id in ids for ids in seen.values()) >= workers

        wait_for(everyone, timeout=30, what=f"{workers} workers to list {task_id} as revoked")

    def _dramatiq(self, item: Hostile, spec: dict) -> None:
        fields = {"queue_name": "dramatiq.signup", "actor_name": "signup",
                  "args": [item.payload.decode("utf-8", "surrogateescape")], "kwargs": {}, "options": {},
                  "message_id": str(uuid.uuid4()), "message_timestamp": int(time.time() * 1000)}
        fields.update(spec.get("fields", {}))
        self._publish("dramatiq.signup", spec.get("body") or json.dumps(fields).encode(), {}, "application/json")

    def _publish(self, queue: str, body: bytes, headers: dict, content_type: str) -> None:
        self.channel.basic_publish("", queue, body, pika.BasicProperties(
            content_type=content_type, content_encoding="utf-8", headers=headers, delivery_mode=2), mandatory=True)

    def _kafka(self, item: Hostile, spec: dict) -> None:
        from kafka_app import topology

        route = topology.routes("signup")[0]
        topic = route.retry_topic if spec.get("topic") == "retry" else route.source
        failed: list = []
        self.producer.produce(topic, item.payload, spec.get("key"), headers=spec.get("headers"),
                              on_delivery=lambda err, _: err and failed.append(err))
        self.producer.flush(30)
        if failed:
            raise RuntimeError(f"Kafka refused the record: {failed[0]}")
