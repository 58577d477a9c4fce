"""RabbitMQ 4.x, run by the kit from the Debian root it builds: the node, its version on record, what 4.x
changed that the kit's stacks meet, and that stopping or killing it leaves no mount or process behind.

The node runs beside the session's (3.10) one (``rabbitmq_root.beside``): ports 200 above the environment's,
its own run directory.
QUEUEKIT_TEST_RABBITMQ4 picks the series (default "4": the newest the kit runs). The first run builds the
root (mmdebstrap, about a minute and 240 MB here); it needs root and mmdebstrap: skipped without them on
a developer's machine, failed under CI=true.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pika
import psutil
import pytest

from queuekit.brokers.process import port_holder, port_open
from queuekit.brokers.rabbitmq import RabbitMQ
from queuekit.brokers.rabbitmq_root import beside, resolve_version, root_info
from queuekit.core.config import LOOPBACK, Settings
from queuekit.core.errors import KitError, WaitTimeout
from queuekit.core.queue_types import DEAD_LETTER_DELIVERY_LIMIT
from queuekit.core.waiting import wait_for
from queuekit.stacks.rabbitmq import Management
from queuekit.suite.compare import environment
from queuekit.suite.runner import run_cell
from scenarios import BY_NAME

VERSION = resolve_version(os.environ.get("QUEUEKIT_TEST_RABBITMQ4", "4"))
pytestmark = pytest.mark.brokers  # starts a node of its own: not part of the broker-free subset


def say(message: str) -> None:
    print(f"[rabbitmq {VERSION}] {message}")


@pytest.fixture(scope="module")
def node() -> RabbitMQ:
    base = Settings.from_env()
    if base.mode != "local" or base.external_amqp_url:
        pytest.skip("the kit's own RabbitMQ 4.x node: not applicable to external brokers")
    rabbit = RabbitMQ(beside(base, VERSION))  # where compare --rabbitmq 3.10,4 runs its 4.x node too
    try:
        rabbit.start(say)
    except KitError as exc:
        if os.environ.get("CI") or (os.geteuid() == 0 and shutil.which("mmdebstrap")):
            pytest.fail(f"RabbitMQ {VERSION} could not start: {exc}", pytrace=False)
        pytest.skip(f"RabbitMQ {VERSION} could not start: {exc}")
    yield rabbit
    rabbit.stop(say)


def test_the_node_runs_in_its_root_and_its_version_is_on_record(node):
    status = node.status()
    info = root_info(node.settings, VERSION)
    assert status.healthy and status.version.startswith(VERSION + "."), status
    assert info and info["rabbitmq_server"].startswith(status.version), info  # the package the root was built with
    beam = next(p for p in _processes_of(node) if p.name() == "beam.smp")
    assert Path(f"/proc/{beam.pid}/root").resolve() == node.root.resolve()  # chrooted: the root's Erlang runs it
    recorded = environment(node.settings, ["celery"])["brokers"]["rabbitmq"]  # what results.json keeps
    assert recorded["version"] == status.version and info["suite"] in recorded["detail"]


def _quorum_returns(channel, how: str, limit: int | None, most: int = 30) -> tuple[int, bool]:
    """Publish one message to a quorum queue (DLX to a sibling queue), take it and hand it back
    (``reject`` or ``nack``, requeue=True) until it is gone or ``most`` times; (deliveries, dead-lettered)."""
    queue, dlq = f"qk.rabbit4.{how}.{limit}", f"qk.rabbit4.{how}.{limit}.dlq"
    for q in (queue, dlq):
        channel.queue_delete(q)
    channel.queue_declare(dlq, durable=True)
    args = {"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    if limit is not None:
        args["x-delivery-limit"] = limit
    channel.queue_declare(queue, durable=True, arguments=args)
    channel.basic_publish("", queue, b"returned", pika.BasicProperties(delivery_mode=2))
    wait_for(lambda: channel.queue_declare(queue, passive=True).method.message_count == 1, timeout=10,
             what="the message to be ready in the quorum queue")
    deliveries = 0
    while deliveries < most:
        method, _, _ = channel.basic_get(queue)
        if method is None:
            break
        deliveries += 1
        if how == "reject":
            channel.basic_reject(method.delivery_tag, requeue=True)
        else:
            channel.basic_nack(method.delivery_tag, requeue=True)
    def count(q: str) -> int:
        return channel.queue_declare(q, passive=True).method.message_count

    if deliveries < most:  # gone from the queue: it must be in the dead-letter queue, nowhere else
        wait_for(lambda: count(dlq) == 1, timeout=10, what=f"the message gone after {deliveries} deliveries in {dlq}")
    # one ending: back in the queue (the last return settles asynchronously) or dead-lettered
    wait_for(lambda: count(queue) + count(dlq) == 1, timeout=10, what=f"the message in {queue} or {dlq}")
    dead = count(dlq) == 1
    for q in (queue, dlq):
        channel.queue_delete(q)
    return deliveries, dead


def test_quorum_queues_cap_returns_at_20_by_default_and_43_counts_reject_not_nack(node):
    connection = pika.BlockingConnection(pika.URLParameters(node.settings.pika_url))
    channel = connection.channel()
    try:
        # 4.0: a quorum queue without x-delivery-limit gets 20 (3.10: unlimited): the 21st delivery's
        # return dead-letters it (release notes 4.0.0, "quorum queues now have a default delivery limit").
        assert _quorum_returns(channel, "reject", None) == (21, True)
        nack = _quorum_returns(channel, "nack", None)
        if VERSION >= "4.3":
            # 4.3 counts delivery-count, which basic.reject raises and basic.nack does not (rabbitmq-server
            # #15387; docs/4.3/nack): a nacked message comes back for ever, never dead-lettered.
            assert nack == (30, False)
        else:
            assert nack == (21, True)
    finally:
        connection.close()


@pytest.mark.parametrize("dlq_limit", [None, DEAD_LETTER_DELIVERY_LIMIT])
def test_a_dead_letter_past_the_default_limit_survives_a_peek_only_where_its_queue_has_a_limit(node, dlq_limit):
    """A message the default limit dead-lettered brings x-delivery-count 21 into its quorum dead-letter queue;
    without a limit of its own that queue's default (20) drops it at its first return — a management peek,
    the kit's way of reading dead letters. So the kit's quorum dead-letter queues carry
    ``DEAD_LETTER_DELIVERY_LIMIT`` (queuekit/core/queue_types.py)."""
    connection = pika.BlockingConnection(pika.URLParameters(node.settings.pika_url))
    channel, mgmt = connection.channel(), Management(node.settings)
    queue, dlq = "qk.rabbit4.dlq-peek", f"qk.rabbit4.dlq-peek.{dlq_limit}"
    try:
        for q in (queue, dlq):
            channel.queue_delete(q)
        own = {"x-delivery-limit": dlq_limit} if dlq_limit else {}
        channel.queue_declare(dlq, durable=True, arguments={"x-queue-type": "quorum", **own})
        channel.queue_declare(queue, durable=True, arguments={  # no limit: 4.x's default of 20
            "x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
        channel.basic_publish("", queue, b"returned", pika.BasicProperties(delivery_mode=2))
        wait_for(lambda: channel.queue_declare(queue, passive=True).method.message_count == 1, timeout=10,
                 what="the message to be ready in the quorum queue")
        returns = 0
        while returns < 30 and (method := channel.basic_get(queue)[0]) is not None:
            returns += 1
            channel.basic_reject(method.delivery_tag, requeue=True)
        [(_, headers)] = wait_for(lambda: mgmt.peek(dlq), timeout=10, what=f"the dead letter in {dlq}")  # 1st return
        assert (returns, headers["x-delivery-count"]) == (21, 21)  # its count came along into the DLQ

        def ready_again() -> bool:
            return channel.queue_declare(dlq, passive=True).method.message_count == 1

        if dlq_limit:
            wait_for(ready_again, timeout=10, what=f"the peeked dead letter back in {dlq}")
            assert len(mgmt.peek(dlq)) == 1  # and again: it stays
        else:  # gone for good: not back within the time a return takes (well under a second here)
            with pytest.raises(WaitTimeout):
                wait_for(ready_again, timeout=5, what=f"the peeked dead letter back in {dlq}")
    finally:
        for q in (queue, dlq):
            channel.queue_delete(q)
        connection.close()


@pytest.mark.parametrize("scenario,stack", [("work-distribution", "celery"), ("poison-crash-loop", "celery_quorum")])
def test_celery_cells_on_4x(node, tmp_path, scenario, stack):
    """Celery (kombu's per-consumer QoS on 4.x) and a quorum queue's delivery limit, as the matrix runs them."""
    result = run_cell(BY_NAME[scenario], stack, node.settings, tmp_path)
    assert result.error is None, result.explain()
    assert result.ok, result.explain()


@pytest.mark.parametrize("scenario", ["work-distribution", "ordering-per-key", "rebalance",
                                      "more-consumers-than-partitions"])
def test_streams_on_4x_are_a_consumer_group_of_super_stream_partitions(node, tmp_path, scenario):
    """rabbitmq_stream on >= 3.11: super streams + single active consumer. Each cell is judged by the stack's
    capabilities on this node (``capabilities_since["3.11"]``: competing consumers, per-key order, parallelism
    <= partitions), which differ from its 3.10 column's: the expectation below is not the 3.10 one."""
    from queuekit.stacks.registry import load_stack

    stack = load_stack("rabbitmq_stream")
    assert BY_NAME[scenario].expected("rabbitmq_stream", stack.capabilities_on(VERSION)) != \
        BY_NAME[scenario].expected("rabbitmq_stream", stack.capabilities_on("3.10")) or scenario == "ordering-per-key"
    result = run_cell(BY_NAME[scenario], "rabbitmq_stream", node.settings, tmp_path)
    assert result.error is None, result.explain()
    assert result.ok, result.explain()
    say(f"rabbitmq_stream {scenario}: {result.observed}")


def test_a_quorum_stack_without_a_limit_of_its_own_gets_the_nodes_default_through_its_framework(node, tmp_path):
    """dramatiq_quorum with ``delivery_limit=None`` (no x-delivery-limit on its queues) and a message that takes
    its worker down each time: 4.x returns it 20 times and dead-letters it at the 21st delivery (3.10 would
    return it for ever). The expectation comes from the stack's capabilities on this node's version
    (``capabilities_since``: default_delivery_limit 20 from 4.0), the observation from the ledger and the DLQ."""
    from dataclasses import replace
    from functools import partial

    from queuekit.suite.model import ByCapability, always
    from scenarios.poison import CRASH_LOOP, crash_loop

    kills = 25  # more than the default allows: a node without it would still be redelivering
    unset = replace(CRASH_LOOP, name="quorum-default-limit", run=partial(crash_loop, most=kills),
                    options=replace(CRASH_LOOP.options, delivery_limit=None, max_retries=0),
                    expect=[always(lost=0), ByCapability("default_delivery_limit", {
                        20: {"attempts": 21, "kills": 21, "ended": "dead-letter", "dead_letters": 1}})])
    result = run_cell(unset, "dramatiq_quorum", node.settings, tmp_path)
    assert result.error is None, result.explain()
    assert result.expected["attempts"] == "== 21", result.expected  # 4.x's capability, not 3.10's (none)
    assert result.ok, result.explain()
    assert "delivery_limit" in result.observed["dead_letter_reason"]  # the broker's own words (x-death)


def _processes_of(node: RabbitMQ) -> list[psutil.Process]:
    """Every process of this node: they all carry its node name in their environment (the other kits'
    nodes in the same root do not)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("RABBITMQ_NODENAME") == node.node:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _host_mounts_into(root: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in line]


def test_sigkill_and_stop_leave_no_mount_and_no_process(node):
    """The mounts live in the node's own namespace: gone with its last process, even after SIGKILL."""
    assert _host_mounts_into(node.root) == []  # never in the host's table, even while it runs
    node.proc.kill("RabbitMQ 4.x")  # SIGKILL to the whole tree: no shutdown hook runs
    # Gone means its processes AND its listening sockets: a SIGKILLed beam's environ is unreadable as soon as
    # its memory is released, a moment before the kernel closes its sockets (seen in CI: AMQP still taken).
    ports = (node.settings.ports.amqp, node.settings.ports.rabbit_mgmt)
    wait_for(lambda: not _processes_of(node) and not any(port_open(LOOPBACK, p) for p in ports), timeout=30,
             what="every process of the killed node to be gone and its ports free",
             describe=lambda: f"processes {[p.pid for p in _processes_of(node)]}, ports "
                              f"{[(p, port_holder(p)) for p in ports if port_open(LOOPBACK, p)]}")
    assert node.start(say) is True  # a second start, on the same directory
    assert node.status().healthy and _host_mounts_into(node.root) == []
    assert node.stop(say) is True
    wait_for(lambda: not _processes_of(node), timeout=10, what="every process of the stopped node to be gone")
    assert _host_mounts_into(node.root) == []
