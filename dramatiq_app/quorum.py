"""DramatiqQuorumStack: the ``dramatiq`` column on quorum queues (the ``dramatiq_quorum`` stack).

Everything ``dramatiq``'s feature sheet says (dramatiq_app/stack.py, docs/stacks/dramatiq.md) holds, options included,
except what the class below lists: ``queue_type`` is fixed to ``quorum`` and ``delivery_limit`` applies.
"""
from __future__ import annotations

from dataclasses import replace

from queuekit.core.options import StackOptions
from queuekit.stacks.declaration import NO_LOSS, ClusterPromise, RetryTiming

from .stack import DramatiqStack


class DramatiqQuorumStack(DramatiqStack):
    """The same actors on quorum queues, as a Dramatiq 2.2 user would do it (no built-in support):
    ``QueuekitBroker`` adds ``x-queue-type=quorum`` + ``x-delivery-limit`` + at-least-once
    dead-lettering (``x-overflow=reject-publish``) to Dramatiq's declarations of Q and Q.DQ, and the
    type to Q.XQ. Everything Dramatiq relies on exists on quorum queues in 3.10: per-queue DLX
    (nack -> .XQ), queue TTL on .XQ, per-consumer prefetch (Dramatiq never asks for global QoS);
    ``x-max-priority`` (Dramatiq's ``max_priority``) would not, and stays unset.

    What changes: a message handed back (worker lost, or prefetched by a worker that stops: Dramatiq
    leaves those unacked and RabbitMQ returns them when the connection closes) is counted, and a retry
    waiting in Q.DQ held by a stopping worker too; past ``delivery_limit`` RabbitMQ moves it to
    Q.XQ itself (reason ``delivery_limit`` in x-death, no traceback). Retries are new messages via
    Q.DQ: not counted.
    """

    name = "dramatiq_quorum"
    capabilities = replace(DramatiqStack.capabilities, delivery_limit=True)  # x-delivery-limit
    # RabbitMQ 4.0 gave quorum queues a default delivery limit of 20 (3.10: unlimited): what a queue declared
    # without the kit's x-delivery-limit gets (tests/brokers/test_rabbitmq4.py observes it with pika)
    capabilities_since = {"4.0": {"default_delivery_limit": 20}}
    variant_of = "dramatiq"
    cluster = ClusterPromise(NO_LOSS, "quorum queue + Dramatiq's publisher confirms + ack after the actor",
                             ci_faults=("kill",))
    bare_twin = None  # the bench compares the framework's twin with the dramatiq column
    retry_timing = RetryTiming()  # not measured on quorum queues: the lower bounds only

    def prepare_options(self, options: StackOptions) -> StackOptions:
        return replace(options, queue_type="quorum")
