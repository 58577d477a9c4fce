"""The producer side of the Celery stacks: a workload's envelope as Celery tasks, published with confirms.

kombu's ``confirm_publish`` makes each ``apply_async`` wait for the broker's
publisher confirm; a nack (a full queue with ``x-overflow=reject-publish``)
comes back as an ``OperationalError`` caused by ``MessageNacked``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from amqp.exceptions import MessageNacked
from celery import Celery, chain, group
from kombu.exceptions import OperationalError

from queuekit.stacks.base import PublishReport
from workloads import WORKLOADS

from . import topology


def send(app: Celery, signature_of: Callable, arguments: list, countdown: float | None = None) -> PublishReport:
    """Apply ``signature_of(argument)`` for each argument over one producer; count confirmed and refused.
    ``countdown``: each task is due that many seconds from now (``publish_delayed``)."""
    began = time.monotonic()
    confirmed = refused = 0
    with app.producer_or_acquire() as producer:
        for argument in arguments:
            try:
                # retry: reconnect on a lost connection (a broker restart); a nack is not retried
                signature_of(argument).apply_async(producer=producer, retry=True, countdown=countdown)
                confirmed += 1
            except OperationalError as exc:  # Celery wraps the nack that confirm_publish raised
                if not isinstance(exc.__cause__, MessageNacked):
                    raise
                refused += 1  # the broker refused it (x-overflow=reject-publish): counted, not retried
    # one broker message per task: a chain's next steps and the fanout's copies are made later, not here
    return PublishReport(confirmed, refused, time.monotonic() - began, broker_messages=confirmed)


def signature(app: Celery, workload: str, argument):
    """The task(s) one envelope becomes."""
    spec = WORKLOADS[workload]
    if spec.shape == "pipeline":  # a chain: each later step gets the previous result prepended to its args
        return chain(*[app.signature(topology.task_name(s), args=[argument]) for s in spec.services])
    # work queue: one task; fan-out: ONE task message that the fanout exchange copies per service
    return app.signature(topology.task_name(spec.services[0]), args=[argument])


class ProducerSideFanout:
    """For a Celery transport without a durable fanout (kombu's Kafka transport drops a fanout publish; Redis's
    fanout is PUB/SUB, lost when nobody listens): the producer sends one task per subscriber queue, as a Dramatiq
    user does, and counts one broker message per copy. Mixed in before ``CeleryStack``."""

    def _signature(self, workload: str, argument):
        spec = WORKLOADS[workload]
        if spec.shape != "fan-out":
            return super()._signature(workload, argument)  # type: ignore[misc]
        app, options = self._app(), self.options  # type: ignore[attr-defined]
        return group(app.signature(topology.TRACKING_TASK, args=[argument], **topology.to_queue(s, options))
                     for s in spec.services)

    def _send(self, workload: str, arguments: list, countdown: float | None = None) -> PublishReport:
        report = super()._send(workload, arguments, countdown)  # type: ignore[misc]
        copies = len(WORKLOADS[workload].services) if WORKLOADS[workload].shape == "fan-out" else 1
        return replace(report, broker_messages=report.confirmed * copies)
