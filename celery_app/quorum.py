"""CeleryQuorumStack: the ``celery`` column on quorum queues (the ``celery_quorum`` stack).

Everything ``celery``'s feature sheet says (celery_app/stack.py, docs/stacks/celery.md) holds, options included,
except what the class below lists: ``queue_type`` is fixed to ``quorum`` and ``delivery_limit`` applies.
"""
from __future__ import annotations

from dataclasses import replace

from queuekit.core.options import StackOptions
from queuekit.stacks.declaration import NO_LOSS, ClusterPromise, RetryTiming

from .stack import CeleryStack


class CeleryQuorumStack(CeleryStack):
    """The same Celery app and tasks on quorum queues (``queue_type="quorum"``): what changes.

    * queues: ``x-queue-type=quorum``, ``x-delivery-limit`` = ``options.delivery_limit`` (RabbitMQ 3.10
      has no default, 4.0+ one of 20: the kit always sets its own), ``x-dead-letter-strategy=at-least-once``
      with ``x-overflow=reject-publish``;
      the dead-letter queues are quorum too (see ``queuekit.core.queue_types``).
    * a worker lost mid-task: RabbitMQ returns the message and counts it (``x-delivery-count``); past the
      limit the broker dead-letters it to ``celery.<service>.dlq`` (reason ``delivery_limit``) instead of
      handing it to the next worker forever. Celery's own retries are new messages: not counted.
    * ``prefetch``: static per consumer (no global QoS; Celery logs "Global QoS is disabled").
    * retries: Celery's native delayed delivery (``celery_delayed_*`` queues, ``celery.tasks`` a topic
      exchange), in whole seconds >= 1 (``topology.retry_countdown``); the waiting retry sits in the
      broker, not unacked in the worker.
    """

    name = "celery_quorum"
    # x-delivery-limit; a countdown goes through kombu's native delayed delivery: the broker holds it until due
    capabilities = replace(CeleryStack.capabilities, delivery_limit=True, delayed="broker",
                           retry_delay="coarse")  # native delayed delivery: whole seconds, >= 1 s
    # RabbitMQ 4.0 gave quorum queues a default delivery limit of 20 (3.10: unlimited): what a queue declared
    # without the kit's x-delivery-limit gets (tests/brokers/test_rabbitmq4.py observes it with pika)
    capabilities_since = {"4.0": {"default_delivery_limit": 20}}
    variant_of = "celery"
    own_vhost = True  # it declares celery's queue names: in compare its cells run on a vhost of their own
    cluster = ClusterPromise(NO_LOSS, "quorum queue + kombu confirm_publish + task_acks_late")
    bare_twin = None  # the bench compares the framework's twin with the celery column
    retry_timing = RetryTiming()  # native delayed delivery in whole seconds: the lower bounds only

    def prepare_options(self, options: StackOptions) -> StackOptions:
        return replace(options, queue_type="quorum")
