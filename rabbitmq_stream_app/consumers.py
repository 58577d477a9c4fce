"""The reader: one service's subscription in one worker, ``process`` per message, outcome routed, offset stored.

Outcome -> what the reader does before it remembers the message's offset as done:

    Outcome               forward the result to the next pipeline stream (``execute.forward``), if any
    MalformedMessage,     append the ORIGINAL bytes to ``stream.<service>.dlq`` with application
    PermanentError        properties reason, service, attempts, original-stream, original-offset
    anything else         retry right here after ``backoff_ms * 2**(attempt-1)``; after ``max_retries``
    (TransientError, …)   retries: the dead-letter stream

Retries happen in the reader, not through a retry stream: every reader of a
stream reads every message (no competing consumers on 3.10), so a retry stream
would be written and retried by every reader. The price: while a message
waits for its retry, the messages behind it on this reader wait too (order is
kept; a poison message delays its stream by the sum of its backoffs).

Forwards and dead letters are appended with publishing id = input offset + 1
under a producer name shared by the service's readers in every worker: the
broker drops an id the name already wrote (deduplication), so one input gives
one output however many readers handled it, and a re-read after a crash does
not append it twice (>= 3.11: one name per service and partition, since ids are
offsets of one partition; one rstream Producer per name). Every append is confirmed before the offset is
remembered (``offsets.py``). Streams have no dead-lettering of their own: the
dead-letter stream is ours.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field

from rstream import AMQPMessage, Consumer, ConsumerOffsetSpecification, MessageContext, OffsetType, Producer
from rstream.exceptions import LeaderNotAvailable, StreamNotAvailable

from queuekit.core.config import Settings
from queuekit.core.envelope import MalformedMessage, decode, encode
from queuekit.core.execute import PermanentError, crash_point, forward, process
from queuekit.core.ledger import Ledger
from queuekit.core.options import StackOptions
from queuekit.core.timings import HOP_EVERY, delivery

from . import clients
from .entries import Entry, decode_entry, stock_entry
from .offsets import StoredOffsets, resume_point
from .single_active import Subscription, Takeover, plan
from .topology import Route

log = logging.getLogger("rabbitmq_stream_app.consumers")
RECONNECT_S = 1.0  # wait between attempts to reach the broker again
MAX_DEAD_LETTER_BYTES = 512 * 1024  # kept whole up to here (a stream frame is at most 1 MiB by default)
TRUNCATED_BYTES = 64 * 1024  # what an oversize dead letter keeps


@dataclass
class Service:
    """One reader's world: which service, in which worker, with what options, on which shape of streams."""

    route: Route
    settings: Settings
    ledger: Ledger
    worker: str  # the ledger's worker name (QUEUEKIT_WORKER_NAME)
    options: StackOptions
    entry: str = ""  # the workload's entry stream (a super stream when partitioned)
    partitioned: bool = False  # RabbitMQ >= 3.11: super streams + single active consumer (``single_active.py``)
    handled: dict[str, int] = field(default_factory=dict)  # stream -> the last offset done, kept across reconnects

    @property
    def reference(self) -> str:
        return self.route.reference(self.worker)

    def subscriptions(self) -> list[Subscription]:
        return plan(self.route, self.worker, self.partitioned, self.entry, self.options.partitions)


async def read(svc: Service, stop: asyncio.Event) -> None:
    """Read until ``stop``; a dropped connection (broker restart) reconnects and resumes after the stored offset."""
    failures = 0
    while not stop.is_set():
        try:
            await read_once(svc, stop)
            failures = 0
        # StreamNotAvailable / LeaderNotAvailable: the restarted broker takes connections before the stream's
        # member is back; the offset query then fails (seen in CI: both readers died, 35 of 40 "lost")
        except (OSError, asyncio.TimeoutError, ConnectionError, StreamNotAvailable, LeaderNotAvailable) as exc:
            failures += 1
            if failures % 10 == 1:  # the first failure, then one line per ~10 s of a broker being away
                why = "stream not served yet" if isinstance(exc, (StreamNotAvailable, LeaderNotAvailable)) \
                    else "broker unreachable"
                log.warning("%s: %s (%s: %s); reconnecting every %g s", svc.reference, why, type(exc).__name__, exc,
                            RECONNECT_S)
        if not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), RECONNECT_S)
            except asyncio.TimeoutError:
                pass


async def read_once(svc: Service, stop: asyncio.Event) -> None:
    """One connection's life: subscribe (after the stored offset, or when the broker activates us), handle in
    order, store, close."""
    broken = asyncio.Event()  # the connection dropped or an append failed: stop handling, reconnect
    stock = svc.options.stock_framework  # rstream's own chunk walk and decoder (framework-drops)
    label = f"{svc.worker}.{svc.route.service}"
    consumer = clients.consumer(svc.settings, label, on_close=lambda _: broken.set(), stock=stock)
    reader = clients.consumer(svc.settings, f"{label}.offsets")  # query_offset off the subscribing connection
    subs = svc.subscriptions()
    # One producer per subscription: rstream keeps ONE publisher per stream in a Producer, named by the first
    # send's publisher_name (later names for that stream are ignored), and dedup ids are per name: two partitions'
    # dead letters under one name would collide (seen: the second partition's first dead letter dropped).
    producers = {s.stream: clients.producer(svc.settings, f"{label}.out" + (f"@{s.stream}" if len(subs) > 1 else ""))
                 for s in subs}
    offsets = {s.stream: StoredOffsets(consumer, s.stream, s.reference) for s in subs}
    busy = asyncio.Lock()  # held while a message is handled: stopping (and handing a partition on) waits for it

    def on_message_of(sub: Subscription):
        async def on_message(entry: Entry, ctx: MessageContext) -> None:
            done = svc.handled.get(sub.stream)
            if stop.is_set() or broken.is_set() or not sub.active or (done is not None and ctx.offset <= done):
                return  # not ours to handle now (stopping, handed on) or already done before a reconnect
            async with busy:
                if not sub.active:  # deactivated while this message waited for the lock
                    return
                try:
                    # [semantics:ack-timing] a stream acks nothing: done = the stored offset; default: handle, then
                    # mark done; early_ack stores before handling
                    if svc.options.early_ack:
                        await offsets[sub.stream].early(ctx.offset)  # early_ack: stored BEFORE handling: at-most-once
                    if entry.problem is not None:  # rstream could not decode it: kept whole, with why, before moving on
                        await dead_letter(svc, producers[sub.stream], entry.raw, ctx.offset,
                                          f"undecodable entry: {entry.problem}", 0, sub)
                    elif ctx.offset % HOP_EVERY:
                        await handle(svc, producers[sub.stream], entry.body, ctx.offset, sub)
                    else:  # bench hops (core.timings): 1 entry in HOP_EVERY notes the chunk's timestamp and arrival
                        with delivery(ctx.timestamp / 1000):
                            await handle(svc, producers[sub.stream], entry.body, ctx.offset, sub)
                    svc.handled[sub.stream] = ctx.offset
                    offsets[sub.stream].done(ctx.offset)  # handled and its outputs confirmed: may be stored now
                except Exception:  # an append not confirmed (broker gone): nothing remembered, re-read later
                    log.exception("%s: %s offset %d not settled", sub.reference, sub.stream, ctx.offset)
                    broken.set()
        return on_message

    takeovers: list[Takeover] = []
    try:
        for sub in subs:
            if sub.single_active:  # the broker says when we are active, and we answer where to start
                sub.active = False
                takeovers.append(Takeover(sub, offsets[sub.stream], reader, busy,
                                          forget=functools.partial(svc.handled.pop, sub.stream, None)))
                start, listener = ConsumerOffsetSpecification(OffsetType.FIRST, None), takeovers[-1].update
            else:
                done = svc.handled.get(sub.stream)
                if done is not None:
                    await offsets[sub.stream].early(done)  # done before the reconnect: store it so it is not re-read
                start, listener = await resume_point(consumer, sub.stream, sub.reference), None
            await consumer.subscribe(sub.stream, on_message_of(sub), decoder=stock_entry if stock else decode_entry,
                                     offset_specification=start, subscriber_name=sub.reference,
                                     initial_credit=clients.INITIAL_CREDIT, properties=dict(sub.properties),
                                     consumer_update_listener=listener)
        storing = [asyncio.create_task(o.run()) for o in offsets.values()]
        stop_or_broken = [asyncio.create_task(e.wait()) for e in (stop, broken)]
        await asyncio.wait(stop_or_broken, return_when=asyncio.FIRST_COMPLETED)
        for waiter in stop_or_broken:
            waiter.cancel()
        async with busy:  # the message in hand finishes (SIGTERM: a warm stop)
            for task in storing:
                task.cancel()
            if not broken.is_set():
                for stored in offsets.values():
                    await stored.flush()  # what was handled is stored before we leave
                for takeover in takeovers:
                    if takeover.sub.active:
                        await takeover.hand_back()  # >= 3.11: read back, so the next member starts after it
    finally:
        await _close(consumer, reader, *producers.values())


# [handler:*] one message: process (retrying in place), then append what it produces, confirmed
async def handle(svc: Service, producer: Producer, payload: bytes, offset: int, sub: Subscription) -> None:
    """Process one message (retrying in place) and append what it produces; return once that is confirmed."""
    attempt = 0
    while True:
        attempt += 1
        try:
            env = decode(payload)  # MalformedMessage: below
            # [semantics:idempotency] process() applies the effect and records the idempotency key in one ledger
            # transaction: a re-read message has no second effect
            outcome = await asyncio.to_thread(process, env, service=svc.route.service, worker=svc.worker,
                                              ledger=svc.ledger, guard=svc.options.guard)
        except (MalformedMessage, PermanentError) as exc:  # never retried: straight to the dead-letter stream
            return await dead_letter(svc, producer, payload, offset, reason(exc), attempt, sub)
        except Exception as exc:  # TransientError or a crash in the handler: retry here, then dead-letter
            if attempt > svc.options.max_retries:
                return await dead_letter(svc, producer, payload, offset, reason(exc), attempt, sub)
            # [semantics:retries] The first retry after backoff_ms, doubling; this reader's later messages wait behind
            # it.
            await asyncio.sleep(svc.options.backoff_ms * 2 ** (attempt - 1) / 1000)
            continue
        if svc.route.sink:  # pipeline: the next step's input carries this step's result
            await append(producer, svc.route.sink, encode(forward(env, outcome)), offset, sub.producer_name)
        crash_point(env.headers, svc.route.service, outcome.attempt, "after-output")  # harness fault only
        return


# [semantics:dead-letter] streams have no dead-lettering: the reader appends the message to the service's dlq stream
# with its reason, confirmed, before its offset is stored
async def dead_letter(svc: Service, producer: Producer, payload: bytes, offset: int, why: str, attempts: int,
                      sub: Subscription) -> None:
    """The dead-letter entry: the original bytes, and why, where from, after how many attempts.

    An entry whose body is not an AMQP data section arrives here as its raw entry bytes (``Entry.body``);
    an empty body is kept as an empty data section, saying so (``empty-body``); one too big for a stream
    frame beside its properties is kept truncated, saying so, rather than failing the append forever."""
    properties = {"reason": why[:1000], "service": svc.route.service, "attempts": str(attempts),
                  "original-stream": sub.stream, "original-offset": str(offset)}
    if not isinstance(payload, (bytes, bytearray)):
        payload = repr(payload).encode()[:TRUNCATED_BYTES]
    if not payload:
        properties["empty-body"] = "true"  # rstream reads an empty data section back as no body at all
    if len(payload) > MAX_DEAD_LETTER_BYTES:
        properties["truncated-from"] = str(len(payload))
        payload = bytes(payload[:TRUNCATED_BYTES])
    await append(producer, svc.route.dlq, payload, offset, sub.producer_name, properties)
    log.warning("dead-lettered %s@%d for %s: %s", sub.stream, offset, svc.route.service, why)


async def append(producer: Producer, stream: str, body: bytes, input_offset: int, name: str,
                 properties: dict | None = None) -> None:
    """Append one message and wait for the broker's confirm; a repeat of the same input is dropped by the broker."""
    msg = AMQPMessage(body=body, application_properties=properties)
    msg.publishing_id = input_offset + 1  # dedup key: strictly increasing per name, as the input offsets are
    await producer.send_wait(stream, msg, publisher_name=name, timeout=30)


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"  # MalformedMessage's str() is its reason ("field 'user_id' must be int")


async def _close(*clients_: Consumer | Producer) -> None:
    for client in clients_:
        try:
            await asyncio.wait_for(client.close(), 10)
        except Exception as exc:  # noqa: BLE001 - the connection may already be gone (broker restart)
            log.info("closing %s: %s", type(client).__name__, exc)
