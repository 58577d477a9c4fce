"""RabbitMQ-stream-specific semantics, on the real broker: every reader reads everything, offsets live in the
broker's offset store, one forward / dead letter per input (named-producer deduplication), a restart resumes."""
from __future__ import annotations

import pytest

from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from rabbitmq_stream_app import partitions, topology
from workloads import WORKLOADS

N = 12


def plain(stack):
    """These tests are of the 3.10 shape (plain streams, a reader per worker); a kit node >= 3.11 runs super
    streams with single active consumer, whose cells tests/brokers/test_rabbitmq4.py and the contract suite run."""
    if partitions.partitioned(stack.settings):
        pytest.skip(f"RabbitMQ {stack.settings.rabbitmq_version}: rabbitmq_stream reads super streams there")
    return stack


def test_every_worker_reads_every_message_and_the_pipeline_keeps_one_output_per_input(fresh_stack, ledger):
    stack = plain(fresh_stack("rabbitmq_stream"))
    stack.start(["video"], StackOptions(workers=2))
    envelopes = [make_envelope(m) for m in WORKLOADS["video"].make_messages(N, seed=5)]
    stack.publish("video", envelopes)
    wait_for(lambda: len(ledger.effects(service="video.notify")) >= N, timeout=90, what=f"{N} videos notified")
    stack.drain("video")

    for service in WORKLOADS["video"].services:
        assert len(ledger.attempts(service=service)) == 2 * N, service  # both workers handled every message
        assert len(ledger.effects(service=service)) == N and ledger.duplicates(service) == {}
    # Both workers forwarded each input under the service's producer name with the same publishing id:
    # the broker wrote the first and dropped the second.
    for route in topology.routes("video")[:-1]:
        assert len(stack.admin.read(route.sink)) == N, route.sink
    # Each worker's progress is in the broker's offset store, at the tail of the stream it reads.
    for route in topology.routes("video"):
        for index in range(2):
            reference = route.reference(stack.worker_name(index))
            assert stack.admin.stored_offset(route.source, reference) == stack.admin.tails[route.source], reference


def test_a_restarted_worker_resumes_after_its_stored_offset_and_dead_letters_carry_where_from(fresh_stack, ledger):
    stack = plain(fresh_stack("rabbitmq_stream"))
    first, second = (WORKLOADS["signup"].make_messages(2 * N, seed=9)[i::2] for i in (0, 1))
    stack.start(["signup"], StackOptions(workers=1, max_retries=1, backoff_ms=20))
    poison = make_envelope(first[0], {"fault": "fail-times", "n": 100})
    stack.publish("signup", [poison, *(make_envelope(m) for m in first[1:])])
    wait_for(lambda: len(ledger.effects(service="signup")) >= N - 1, timeout=60, what="the first batch")
    stack.drain("signup")
    stack.stop()

    stack.publish("signup", [make_envelope(m) for m in second])  # while no reader runs
    stack.start(["signup"], StackOptions(workers=1))  # the same worker name: the same offset reference
    wait_for(lambda: len(ledger.effects(service="signup")) >= 2 * N - 1, timeout=60, what="the second batch")
    stack.drain("signup")

    assert len(ledger.attempts(service="signup")) == 2 * N + 1  # nothing of the first batch read again
    [dead] = stack.admin.read(topology.Route("signup").dlq)
    props = {k.decode(): v.decode() for k, v in dead[1].application_properties.items()}
    assert props["reason"].startswith("TransientError: injected failure 2/100")
    assert props["attempts"] == "2" and props["original-stream"] == "stream.signup" and props["original-offset"] == "0"
