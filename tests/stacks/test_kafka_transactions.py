"""Kafka's two opt-in modes, on the real broker: transactions (exactly-once) and pause-resume long tasks."""
from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from helpers import BAD_TYPE, signups

from kafka_app import clients, topology
from kafka_app.stack import KafkaStack
from queuekit.core.envelope import make_envelope
from queuekit.core.options import StackOptions
from queuekit.core.waiting import wait_for
from workloads.messages import VideoUploaded

TRANSACTIONAL = {"transactional": True}


def records_and_end(kafka: KafkaStack, topic: str) -> tuple[int, int]:
    """(records in the log as read_uncommitted sees them, end offset), summed over the topic's partitions."""
    raw = Consumer({**clients.reader_config(kafka.settings), "isolation.level": "read_uncommitted"})
    tps = [TopicPartition(topic, p) for p in kafka.admin.partitions(topic)]
    ends = {tp.partition: raw.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    raw.assign([TopicPartition(topic, tp.partition, OFFSET_BEGINNING) for tp in tps])
    seen: list = []

    def read_to_end() -> bool:
        msg = raw.poll(0.2)
        if msg is not None and not msg.error():
            seen.append(msg)
        return all(not ends[tp.partition] or tp.offset >= ends[tp.partition] for tp in raw.position(tps))

    wait_for(read_to_end, timeout=20, what=f"{topic} read to its end")
    raw.close()
    return len(seen), sum(ends.values())


def test_transactional_outputs_commit_with_their_offsets_and_the_lag_reaches_zero(kafka, ledger):
    kafka.start(["signup"], StackOptions(workers=1, backoff_ms=50, max_retries=2, **TRANSACTIONAL))
    flaky, poison, *good = signups(6, 41, {"fault": "fail-times", "n": 1}, {"fault": "always-fail"})
    kafka.publish("signup", [flaky, poison, *good])
    kafka.publish_raw("signup", BAD_TYPE)

    wait_for(lambda: len(ledger.effects(service="signup")) == 5, timeout=30, what="5 signup effects")
    # Lag 0 means the committed offsets stepped over each topic's final commit marker (idle commit).
    kafka.drain("signup", timeout=30)
    dead = {d.reason.split(":")[0]: d for d in kafka.dead_letters("signup")}  # read past the markers too
    assert set(dead) == {"PermanentError", "MalformedMessage"} and dead["MalformedMessage"].payload == BAD_TYPE
    assert [a.outcome for a in ledger.attempts_for("signup", flaky.key)] == ["error", "ok"]
    # Written in transactions: each retry / DLQ record is followed by a commit marker, an offset of its own.
    assert records_and_end(kafka, "qk.signup.retry") == (1, 2)
    assert records_and_end(kafka, "qk.signup.dlq") == (2, 4)


def test_a_successor_with_the_same_transactional_id_fences_the_worker(kafka, ledger):
    kafka.start(["signup"], StackOptions(workers=1, partitions=1, **TRANSACTIONAL))
    tx_id = topology.Route("signup").transactional_id(kafka.worker_name(0), 0)
    successor = clients.transactional_producer(kafka.settings, "qk.test.successor", tx_id)
    successor.init_transactions(30)  # a new epoch for kafka-0's id: its producer is now a zombie
    [envelope] = signups(1, 51)
    kafka.publish("signup", [envelope])

    # The zombie handles the record (the ledger is outside Kafka), then its transaction is refused:
    # a fatal error, so the worker exits rather than go on as a fenced member.
    wait_for(lambda: not kafka.pool.alive(0), timeout=30, what="the fenced worker to exit")
    assert kafka.pool.procs[0].returncode == 1
    assert [a.outcome for a in ledger.attempts_for("signup", envelope.key)] == ["ok"]
    assert kafka.lag("signup")["qk.signup"] == 1  # its offset never committed: whoever comes next redoes it


@pytest.mark.parametrize("transactional", [False, True], ids=["stored-offsets", "transactional"])
def test_pause_resume_keeps_a_long_handler_in_its_group_through_a_rebalance(kafka, ledger, transactional):
    kafka.start(["video"], StackOptions(workers=1, partitions=2, max_poll_interval_ms=2000, long_task="pause-resume",
                                        transactional=transactional))
    slow = {"fault": "slow", "seconds": 3, "service": "video.transcode"}  # longer than max.poll.interval.ms
    # One user, so one partition, handled one after another. User 2's partition (0) is the one
    # librdkafka's cooperative-sticky assignor hands to the newcomer here, so the revocation hits the
    # record in hand; the assertions hold whichever partition moves.
    videos = [make_envelope(VideoUploaded(video_id=i, user_id=2, duration_s=0.5), slow) for i in (1, 2, 3)]
    kafka.publish("video", videos)
    wait_for(lambda: ledger.count("attempts", worker="kafka-0") >= 1, timeout=20, what="kafka-0 to start a transcode")

    kafka.add_worker()  # a rebalance mid-task: kafka-0 must rejoin while its handler still runs
    wait_for(lambda: len(ledger.effects(service="video.notify")) == 3, timeout=40, what="3 videos notified")
    kafka.drain("video", timeout=30)
    assert ledger.duplicates("video.transcode") == {}
    [in_hand, *rest] = [[a.worker for a in ledger.attempts_for("video.transcode", v.key)] for v in videos]
    # Nobody was evicted (blocking in the poll loop, each record would run again elsewhere). Only the
    # record in hand may run twice: if its partition was the one revoked, kafka-0 did not settle it ...
    assert all(len(workers) == 1 for workers in rest)
    assert in_hand in (["kafka-0"], ["kafka-0", "kafka-1"])
    # ... but it had forwarded its output before it knew: read downstream, unless that output was in a
    # transaction, which kafka-0 then aborted instead of committing.
    thumbnails = len(ledger.attempts_for("video.thumbnail", videos[0].key))
    assert thumbnails == (1 if transactional else len(in_hand))
