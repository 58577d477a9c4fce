"""'When to use which', built from observed cells, in the spirit of the class notes.

Each claim names the scenario and the observation that is its evidence; the
stacks that did best are computed from what was observed in this run, not
written down in advance. Where the run shows no difference, it says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Claim:
    need: str  # the need a team has, in plain words
    scenario: str
    metric: str
    better: str  # "lower" | "higher" | "true" | "positive" (any push-back at all counts, not how much)
    why: str  # the mechanism behind the difference

    def rank(self, values: dict[str, Any]) -> list[str]:
        usable = {s: v for s, v in values.items() if v is not None and not isinstance(v, (list, dict, str))}
        if not usable:
            return []
        if self.better == "true":
            return [s for s, v in usable.items() if v is True]
        if self.better == "positive":
            return [s for s, v in usable.items() if v > 0]
        pick = min if self.better == "lower" else max
        best = pick(usable.values())
        return [s for s, v in usable.items() if v == best]


CLAIMS = [
    Claim("Share tasks among workers, each task done by one", "work-distribution", "keys_seen_by_several_workers",
          "lower", "a queue hands each message to one consumer; a group gives each partition to one member; "
          "a RabbitMQ 3.10 stream gives every message to every reader (no single active consumer before 3.11)"),
    Claim("Many services need the same events", "fan-out", "broker_messages_per_event", "lower",
          "Kafka keeps one log that every group reads, and so does a RabbitMQ stream (an offset per reader): "
          "log semantics without a second broker; RabbitMQ queues copy per queue (fanout exchange)"),
    Claim("Per-user order with several consumers", "ordering-per-key", "order_violations", "lower",
          "same key -> same partition -> one consumer; a work queue gives the next message to any free worker"),
    Claim("Failing messages set aside, with their reason, without blocking others", "poison-to-dlq",
          "dead_is_the_poison", "true", "Dramatiq's .XQ is built in; Celery needs a DLX + reject; Kafka a DLQ topic you write"),
    Claim("A task must survive a worker crash", "crash-mid-task", "lost", "lower",
          "ack / commit only after the work is done (acks_late, store offset after processing)"),
    Claim("A message that crashes its worker must not crash every worker", "poison-crash-loop", "dead_letters",
          "positive", "quorum queues count redeliveries (x-delivery-limit) and dead-letter; classic queues and "
          "Kafka groups hand it to the next worker again"),
    Claim("Several tasks fetched ahead must survive a worker crash", "crash-mid-task-prefetch", "lost", "lower",
          "RabbitMQ acks each delivery, kafka_app stores each offset after its record; kombu's confluentkafka "
          "ack commits the whole position, past what was fetched and not done"),
    Claim("Beware of acking on receipt", "crash-mid-task-early-ack", "lost", "lower",
          "Celery's default acks when the task starts: a crash loses it"),
    Claim("Duplicates are normal (at-least-once): make them harmless", "duplicate-delivery", "effects_with_guard",
          "lower", "an idempotency key checked in the same transaction as the effect"),
    Claim("Replay history for a new consumer or a bug fix", "replay", "replayed", "higher",
          "Kafka and RabbitMQ streams retain the log (replay without a second broker); a queue deletes what was acked"),
    Claim("Slow the producer down when consumers fall behind", "back-pressure", "publisher_refused", "positive",
          "RabbitMQ's prefetch and x-max-length with reject-publish push back; Kafka and RabbitMQ streams "
          "let lag grow"),
    Claim("Each input's output exactly once, across a crash", "exactly-once", "outputs_delivered_per_input", "lower",
          "Kafka transactions (consume-transform-produce); elsewhere idempotency keys give effectively-once"),
    Claim("More workers than partitions, all busy (queue semantics without a second broker)",
          "more-consumers-than-partitions", "workers_with_work", "higher",
          "a consumer group gives a partition to one member; queues and Kafka share groups hand out messages"),
    Claim("A task longer than the broker's lease runs once", "lease-expiry", "long_task_attempts", "lower",
          "share groups lock each record (max 60 s, not renewable from confluent-kafka); consumer groups evict "
          "the member after max.poll.interval.ms; RabbitMQ's consumer_timeout is broker-wide (30 min here)"),
]


class _Observed(Protocol):
    @property
    def observed(self) -> dict[str, Any]: ...


class Compared(Protocol):
    """What the guide reads: a ``Comparison``, or results.json seen through ``report.html``."""

    @property
    def stacks(self) -> list[str]: ...
    def cell(self, scenario: str, stack: str) -> _Observed | None: ...


def guide(comparison: Compared) -> list[dict[str, Any]]:
    """The claims this run has evidence for, each with the observed values and the best stacks."""
    rows = []
    for claim in CLAIMS:
        values = {stack: (cell.observed.get(claim.metric) if (cell := comparison.cell(claim.scenario, stack)) else None)
                  for stack in comparison.stacks}
        if all(v is None for v in values.values()):
            continue
        best = claim.rank(values)
        verdict = ("no difference observed" if len(best) == len(comparison.stacks)
                   else "best observed: " + ", ".join(best) if best else "no usable observation")
        rows.append({"need": claim.need, "scenario": claim.scenario, "metric": claim.metric,
                     "values": values, "verdict": verdict, "why": claim.why})
    return rows
