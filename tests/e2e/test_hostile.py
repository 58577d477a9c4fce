"""Hostile input on every stack: it kills nothing and loses nothing (``pytest -k hostile``).

One stack start per stack, then the whole corpus (``queuekit.suite.hostile.CORPUS``) with a good
message before each input and a few after, then the checks: where each input ended (dead letter
with its reason, effect, or refused at publish: exactly one; a dead letter AND an effect, or an
effect it carried for another message, fails), that every good message took effect (those an
input carries with it too), that nothing is left unsettled on the broker, and that every worker
process is still alive. Workers run as
in production here: WITHOUT the harness's fault switch, so fault directives are a stranger's.
"""
from __future__ import annotations

import json

import pytest

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from queuekit.stacks.registry import STACKS
from queuekit.suite.hostile import CORPUS, Hostile, is_dead_letter_of, marker, protocol
from queuekit.suite.hostile import wire as wire_for
from workloads.messages import SignupRequested

OPTIONS = StackOptions(workers=2, max_retries=1, backoff_ms=50)
TRAILING_GOOD = 5


def test_the_corpus_is_big_and_covers_every_class():
    assert len(CORPUS) >= 30 and len({h.name for h in CORPUS}) == len(CORPUS)
    assert {h.cls for h in CORPUS} >= {"encoding", "shape", "schema", "protocol", "size", "headers", "directives",
                                        "limits", "canvas"}
    assert {h.via for h in CORPUS} >= {"envelope", "celery", "dramatiq", "kafka", "kafka_share", "celery_kafka",
                                       "rabbitmq_stream"}


@pytest.mark.parametrize("name", list(STACKS))
def test_hostile_inputs(name, fresh_stack, ledger):
    _LANDED.clear()
    stack = fresh_stack(name)
    _without_faults(stack)
    stack.start(["signup"], OPTIONS)
    wire = wire_for(stack)
    speaks = protocol(stack)  # celery_quorum / celery_kafka get Celery's protocol abuse, dramatiq_quorum Dramatiq's
    inputs = [h for h in CORPUS if h.via in ("envelope", speaks, name)]
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
                            wire.last = None
                            wire.send(item)
                            if wire.last:  # where a Kafka record landed: its name if the consumer cannot decode it
                                _LANDED.setdefault(item.name, set()).add(wire.last)
                    except Exception as exc:  # noqa: BLE001 - refused at publish: recorded, then checked
                        refused.setdefault(item.name, []).append(f"{route}: {type(exc).__name__}: {exc}"[:160])
        goods += [_good(stack, f"good-{name}-tail-{i}") for i in range(TRAILING_GOOD)]
    finally:
        wire.close()

    by_name = {h.name: h for h in inputs}
    companions = [key for h in inputs for key in h.effects]
    expected_dead = {h.name: sent[h.name] for h in inputs if h.end_on(stack).startswith("dead")}

    def missing() -> list[str]:
        have = {e.key for e in ledger.effects(service="signup")}
        dead = stack.dead_letters("signup")
        gaps = [f"effect of {k}" for k in goods + companions if k not in have]
        gaps += [f"{n - _count(dead, by_name[h])} dead letter(s) of {h}" for h, n in expected_dead.items()
                 if _count(dead, by_name[h]) < n]
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
        want, got = h.end_on(stack), table[h.name]
        if want == "refused":
            ok = len(refused.get(h.name, [])) == sent[h.name]
        elif want == "effect":
            ok = got == "effect" and ledger.duplicates("signup").get(marker(h.name)) is None
        else:
            ok = got.startswith("dead") and want[len("dead: "):] in got and _count(dead, h) == sent[h.name]
        if not ok:
            wrong[h.name] = f"expected {want!r}, ended {got!r}"
    assert not wrong, wrong
    unexplained = [d for d in dead if not any(_is_of(d, h) for h in inputs)]
    assert not unexplained, [(d.payload[:80], d.reason) for d in unexplained]
    assert all(stack.pool.alive(i) for i in range(OPTIONS.workers)), "a worker died"
    assert not (set(goods + companions) - effects)


def _without_faults(stack) -> None:
    """The workers of this stack start as a deployment would: fault directives off."""
    stack.harness_faults = False


def _good(stack, key: str) -> str:
    msg = SignupRequested(user_id=1, email="good@example.test", idempotency_key=key)
    report = stack.publish("signup", [make_envelope(msg)])
    assert report.confirmed == 1
    return key


_LANDED: dict[str, set[str]] = {}  # input name -> "topic[partition]@offset" of each Kafka record it wrote


def _count(dead, h: Hostile) -> int:
    return sum(1 for d in dead if _is_of(d, h))


def _is_of(d, h: Hostile) -> bool:
    return is_dead_letter_of(d, h, _LANDED.get(h.name, ()))


def _ended(h: Hostile, dead, effects: set[str], refused: dict) -> str:
    """Where ``h`` ended; more than one place (a dead letter AND an effect, or an effect it carried for a
    different message: a canvas or pipeline from the wire) is said so, and fails every expectation."""
    m = marker(h.name)
    own = sorted(k for k in effects if (k == m or k.startswith(m + "-")) and k not in h.effects)
    reasons = sorted({d.reason for d in dead if _is_of(d, h)})
    if reasons and own:
        return f"TWO ENDINGS: effects {own} and dead: " + " | ".join(r[:120] for r in reasons)
    if reasons:
        return "dead: " + " | ".join(r[:120] for r in reasons)
    if own and own != [m]:
        return f"TWO ENDINGS: effects {own}"
    if own:
        return "effect"
    if h.name in refused:
        return "refused: " + refused[h.name][0]
    return "LOST"
