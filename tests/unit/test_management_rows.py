"""The management API's rows as RabbitMQ really sends them, including the racy ones, read without raising.

A consumer whose channel closed while ``/api/consumers`` was being listed comes back with
``"channel_details": []`` (seen in CI: the back-pressure sampler thread died on it). The rows here are
shaped like the API's; the transport is httpx's own in-memory one, not a broker.
"""
from __future__ import annotations

import httpx

from queuekit.core.config import settings
from queuekit.stacks.rabbitmq import Management

CONSUMERS = [
    {"queue": {"name": "celery.signup"}, "channel_details": {"name": "127.0.0.1:5 -> 127.0.0.1:5672 (1)"}},
    {"queue": {"name": "celery.signup"}, "channel_details": []},  # its channel closed mid-listing
    {"queue": {"name": "celery.signup.dlq"}, "channel_details": {"name": "dlq reader (1)"}},
]
CHANNELS = [
    {"name": "127.0.0.1:5 -> 127.0.0.1:5672 (1)", "messages_unacknowledged": 2},
    {"name": "dlq reader (1)", "messages_unacknowledged": 7},
]


def test_unacked_per_consumer_channel_skips_a_consumer_whose_channel_closed(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUEKIT_HOME", str(tmp_path))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=CONSUMERS if "/consumers/" in request.url.path else CHANNELS)

    mgmt = Management(settings())
    mgmt.http = httpx.Client(base_url="http://mgmt.invalid/api", transport=httpx.MockTransport(answer))
    assert mgmt.unacked_per_consumer_channel("celery.", exclude_suffix=".dlq") == {
        "127.0.0.1:5 -> 127.0.0.1:5672 (1)": 2}
