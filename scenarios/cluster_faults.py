"""Cluster scenarios as data: each variant teams argue about, through each fault of its leader.

A case names a broker, the settings of the variant, the fault, and what is
*promised* (an observation that must hold, e.g. ``lost == 0``). A case with no
promise is measured and shown, not judged: ``acks=1`` *may* lose confirmed
records, and how many is the finding.

``ci=True`` marks the subset `.ci/run` runs (about 3-4 minutes on the 2-core
machine); ``QUEUEKIT_CLUSTER_FULL=1`` (or ``queuekit faults``) runs them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from queuekit.core.config import Settings

KINDS = ("kill", "pause", "partition", "partition-clients")  # queuekit/brokers/faults.py injects them

NO_LOSS = {"lost": 0}


@dataclass(frozen=True)
class FaultCase:
    broker: str  # rabbitmq | kafka
    options: tuple[tuple[str, Any], ...]  # the probe's keyword arguments: the variant
    fault: str
    promise: dict = field(default_factory=dict)  # observation -> value that must hold
    why: str = ""  # the claim under test, for the report
    ci: bool = False
    unsupported: str = ""  # why this case cannot run (shown as such in the report, never silently skipped)

    @property
    def variant(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.options)

    @property
    def id(self) -> str:
        return f"cluster-{self.broker}-{self.variant.replace(' ', '-').replace('=', '_')}-{self.fault}"  # -k friendly

    def probe(self, settings: Settings):
        if "stack" in dict(self.options):  # a framework stack through the Stack template
            from queuekit.suite.stack_probe import StackProbe

            return StackProbe(settings, **dict(self.options))
        from queuekit.suite.probes import KafkaProbe, RabbitProbe

        cls = KafkaProbe if self.broker == "kafka" else RabbitProbe
        return cls(settings, **dict(self.options))


# variant -> (promise, why)
KAFKA = {
    (("acks", "all"), ("min_insync", 2)): (NO_LOSS, "acks=all + min.insync=2: a confirmed record is on 2 replicas"),
    (("acks", "1"), ("min_insync", 2)): ({}, "acks=1: only the leader had it when it confirmed; may lose"),
    (("acks", "all"), ("min_insync", 1)): ({}, "min.insync=1: acks=all may mean the leader alone; may lose"),
    (("acks", "all"), ("min_insync", 1), ("unclean", True)): (
        {}, "beside acks=all min.insync=1: a replica outside the ISR may lead and truncate; may lose"),
}
RABBIT = {
    (("queue_type", "quorum"), ("confirms", True)): (NO_LOSS, "quorum queue confirms after a Raft majority"),
    (("queue_type", "classic"), ("confirms", True)): (NO_LOSS, "classic durable queue on one node: unavailable "
                                                     "while its node is down, nothing lost"),
    (("queue_type", "quorum"), ("confirms", False)): ({}, "no confirms: the publisher cannot know; may lose"),
}
CI = {  # one of each claim, through the fault that tests it hardest, within a few minutes
    ("kafka", "acks=all min_insync=2", "partition"), ("kafka", "acks=1 min_insync=2", "partition"),
    ("kafka", "acks=all min_insync=2", "pause"),
    ("rabbitmq", "queue_type=quorum confirms=True", "kill"),
    ("rabbitmq", "queue_type=classic confirms=True", "kill"),
    ("rabbitmq", "queue_type=quorum confirms=True", "partition"),
}

CASES: list[FaultCase] = []
for broker, table in (("kafka", KAFKA), ("rabbitmq", RABBIT)):
    for options, (promise, why) in table.items():
        for kind in KINDS:
            case = FaultCase(broker, options, kind, promise, why)
            CASES.append(FaultCase(broker, options, kind, promise, why, ci=(broker, case.variant, kind) in CI))

# The framework stacks through the same faults (queuekit/suite/stack_probe.py): each stack's own workers,
# publish path (its confirms / acks) and ledger. stack -> (broker, promise, why, unsupported). A promise
# only where the broker replicates what the stack's publish waited for AND the stack acks after the effect.
STACKS = {
    "dramatiq_quorum": ("rabbitmq", NO_LOSS, "quorum queue + Dramatiq's publisher confirms + ack after the actor"),
    "celery_quorum": ("rabbitmq", NO_LOSS, "quorum queue + kombu confirm_publish + task_acks_late"),
    "dramatiq": ("rabbitmq", {}, "classic queue on one node: no replica; reconnecting is Dramatiq's (measured)"),
    "celery": ("rabbitmq", {}, "classic queue on one node: no replica; reconnecting is kombu's (measured)"),
    "kafka": ("kafka", NO_LOSS, "acks=all, RF 3, min.insync 2, offsets committed after the effect"),
    "kafka_share": ("kafka", NO_LOSS, "acks=all, RF 3, min.insync 2, records ACCEPTed after the effect"),
    "rabbitmq_stream": ("rabbitmq", {}, "a replicated stream, but the stack's rstream clients know one host "
                        "(node 1, the stream's leader): measured"),
    "celery_kafka": ("kafka", {}, "kombu's confluentkafka transport (the kit's ack: committed up to the first "
                     "unacked record), acks=all, but its producer ignores delivery reports: measured"),
}
STACK_CI = {("dramatiq_quorum", "kill"), ("kafka", "partition")}  # ~1.5 min together on the 2-core machine
for stack, (broker, promise, why) in STACKS.items():
    for kind in KINDS:
        CASES.append(FaultCase(broker, (("stack", stack),), kind, promise, why, ci=(stack, kind) in STACK_CI))
