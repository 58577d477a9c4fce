"""The delivery contract and the workloads, run on every registered stack in turn."""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import stack_names


# Every stack holds the contract, celery_kafka included: the losses its cells showed now and then were stock
# kombu's ack committing past unacked records and its send ignoring a failed delivery, which the kit's
# transport does not do (celery_app/kafka_transport.py).
@pytest.fixture(params=stack_names())
def stack(request, fresh_stack):
    return fresh_stack(request.param)
