"""The delivery contract and the workloads, run on every registered stack in turn."""
from __future__ import annotations

import pytest

from queuekit.stacks.registry import stack_names


# Every stack holds the contract, celery_kafka included: the loss its cells showed now and then was stock
# kombu's ack committing past unacked records, which the kit's transport does not (celery_app/kafka_transport.py).
@pytest.fixture(params=stack_names())
def stack(request, fresh_stack):
    return fresh_stack(request.param)
