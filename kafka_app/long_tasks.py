"""Long handlers without leaving the group: ``options.long_task = "pause-resume"``.

librdkafka throws a member out of its group when it does not call ``poll()``
for ``max.poll.interval.ms``. The default mode ("block") handles each record
inside the poll loop, so a handler longer than that gets its member evicted,
its partition reassigned and the record handled again by the next owner —
who is evicted in turn. Here the consumer thread pauses every partition it
owns, hands the record to a worker thread and keeps calling ``poll()``, which
returns no record while everything is paused but proves liveness and serves
rebalances; when the handler is done the offset is settled and fetching
resumes where it stopped.

A partition revoked (or lost) while its record is handled is not settled: its
next owner re-reads the record from the committed offset.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from concurrent import futures

from confluent_kafka import Consumer, Message, TopicPartition

from .offsets import where

log = logging.getLogger("kafka_app.long_tasks")
MODES = ("block", "pause-resume")
LIVENESS_S = 0.2  # poll() at least this often while a handler runs: far below any max.poll.interval.ms


class PausedWork:
    """One consumer thread's long-task runner: one record at a time, in its own worker thread."""

    def __init__(self, consumer: Consumer, name: str):
        self.consumer = consumer
        self.pool = futures.ThreadPoolExecutor(1, thread_name_prefix=f"{name}.task")
        self.busy = False
        self.moved: set[tuple[str, int]] = set()  # partitions revoked or lost during the current task

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """on_assign: take the partitions now, and pause them if a task is running."""
        consumer.incremental_assign(partitions)
        if self.busy:
            consumer.pause(partitions)  # assigned mid-task: fetch nothing until the task is done

    def forget(self, partitions: list[TopicPartition]) -> None:
        """on_revoke / on_lost: the running task, if its partition is among these, must not settle it."""
        self.moved.update((tp.topic, tp.partition) for tp in partitions)

    def run(self, msg: Message, settle: Callable[[Callable[[], bool]], None],
            keep_paused: Collection[tuple[str, int]] = ()) -> None:
        """Run ``settle(owned)`` (handle the record, then store / commit its offset) in the worker thread
        while this thread keeps polling; re-raise what it raised. ``keep_paused``: partitions to leave
        paused afterwards (the retry consumer's held records)."""
        key = (msg.topic(), msg.partition())
        self.moved.clear()
        task = self.pool.submit(settle, lambda: key not in self.moved)
        # A short handler is done within LIVENESS_S: no pause. (Each pause/resume costs up to
        # fetch.wait.max.ms, 500 ms: the resumed partition waits for the fetch request in flight.)
        if not futures.wait([task], timeout=LIVENESS_S).done:
            self._poll_paused_until(task, keep_paused)
        task.result()

    def _poll_paused_until(self, task: futures.Future, keep_paused: Collection[tuple[str, int]]) -> None:
        self.busy = True
        # Pause everything we own: nothing more is fetched (what librdkafka prefetched is dropped and
        # re-fetched from the position after resume), so poll() below returns no record.
        self.consumer.pause(self.consumer.assignment())
        try:
            while not futures.wait([task], timeout=LIVENESS_S).done:
                # poll() while paused: resets the max.poll.interval.ms clock, runs rebalance callbacks.
                late = self.consumer.poll(0)
                if late is not None and late.error():
                    log.warning("consumer error during a task: %s", late.error())
                elif late is not None:  # not expected (all paused); never lose it
                    self._unread(late)
        finally:
            self.busy = False
            self.consumer.resume([tp for tp in self.consumer.assignment()
                                  if (tp.topic, tp.partition) not in keep_paused])

    def _unread(self, msg: Message) -> None:
        tp = TopicPartition(*where(msg))
        self.consumer.pause([tp])
        self.consumer.seek(tp)  # fetched again from this record once resumed
        log.warning("%s/%d@%d arrived during a paused task: rewound", msg.topic(), msg.partition(), msg.offset())
