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
from queuekit.suite.stack_probe import cluster_stacks

KINDS = ("kill", "pause", "partition", "partition-clients")  # queuekit/brokers/faults.py injects them

NO_LOSS = {"lost": 0}


@dataclass(frozen=True)
class FaultCase:
    broker: str  # rabbitmq | kafka | redis
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
        if self.broker == "redis":
            from queuekit.suite.redis_probe import RedisProbe

            return RedisProbe(settings, **dict(self.options))
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
REDIS: dict[tuple, tuple[dict, str]] = {  # measured, not promised: Redis replicates asynchronously, and WAIT is not consensus
    (("wait", 0),): ({}, "XADD acknowledged by the primary alone (async replication): a failover may lose it"),
    (("wait", 1),): ({}, "XADD + WAIT 1: acknowledged once a replica has it too; narrows the window, "
                     "does not close it (Redis's WAIT documentation)"),
    (("structure", "list"), ("wait", 0)): ({}, "LPUSH + LMOVE/LREM (the lists Celery, Dramatiq and RQ use), "
                                           "acknowledged by the primary alone: a failover may lose it"),
    (("structure", "list"), ("wait", 1)): ({}, "LPUSH + WAIT 1: as the stream's WAIT 1, on a list"),
}
CI = {  # one of each claim, through the fault that tests it hardest, within a few minutes
    ("kafka", "acks=all min_insync=2", "partition"), ("kafka", "acks=1 min_insync=2", "partition"),
    ("kafka", "acks=all min_insync=2", "pause"),
    ("rabbitmq", "queue_type=quorum confirms=True", "kill"),
    ("rabbitmq", "queue_type=classic confirms=True", "kill"),
    ("rabbitmq", "queue_type=quorum confirms=True", "partition"),
}

CASES: list[FaultCase] = []
# Redis: none in CI (tests/brokers/test_redis_cluster.py kills the primary there); `queuekit faults --broker redis`.
for broker, table in (("kafka", KAFKA), ("rabbitmq", RABBIT), ("redis", REDIS)):
    for options, (promise, why) in table.items():
        for kind in KINDS:
            case = FaultCase(broker, options, kind, promise, why)
            CASES.append(FaultCase(broker, options, kind, promise, why, ci=(broker, case.variant, kind) in CI))

# The framework stacks through the same faults (queuekit/suite/stack_probe.py): each stack's own workers,
# publish path (its confirms / acks) and ledger. Each stack declares whether it takes part and what it
# promises (``Stack.cluster``, a ClusterPromise): a promise only where the broker replicates what the
# stack's publish waited for AND the stack acks after the effect.
for stack, broker, declared in cluster_stacks():
    for kind in KINDS:
        CASES.append(FaultCase(broker, (("stack", stack),), kind, declared.promise, declared.why,
                               ci=kind in declared.ci_faults))
