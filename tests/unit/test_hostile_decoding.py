"""The decode paths the frameworks' transports choke on, broker-free: stream chunks, bounded inflation,
canvas and pipelines from the wire, kombu records, and the corpus's per-stack declarations."""
from __future__ import annotations

import gzip
import zlib

import pytest

from celery_app import compression
from celery_app.frames import canvas_problem, chain_after
from celery_app.kafka_transport import record_problem
from dramatiq_app.frames import next_step, options_problem
from queuekit.stacks.registry import STACKS, load_stack
from queuekit.suite.hostile import CORPUS, amqp, amqp_map, good, gzipped, kombu_record, records, signature, zlib_bomb
from rabbitmq_stream_app.entries import MAX_BATCH_BYTES, Undecodable, chunk_entries, decode_entry


def simple(record: bytes) -> bytes:
    return len(record).to_bytes(4, "big") + record


def sub_batch(data: bytes, count: int, declared: int, kind: int = 1) -> bytes:
    return (bytes([0x80 | kind << 4]) + count.to_bytes(2, "big") + declared.to_bytes(4, "big")
            + len(data).to_bytes(4, "big") + data)


# -- stream chunks ---------------------------------------------------------------------------------
def test_a_chunk_keeps_every_entry_and_its_offset_slot():
    one, two = amqp(good("a")), amqp(good("b"))
    batch = records(one, two)
    chunk = simple(b"not amqp") + sub_batch(gzip.compress(batch), 2, len(batch)) + simple(one)
    got = list(chunk_entries(chunk, 3))
    assert got == [b"not amqp", one, two, one]
    entries = [decode_entry(g) for g in got]
    assert entries[0].problem and entries[0].raw == b"not amqp"
    assert [e.body for e in entries[1:]] == [good("a"), good("b"), good("a")]


@pytest.mark.parametrize("declared, zeros, says", [
    (16 << 20, 16 << 20, "over the"),  # declares its size: refused before inflating a byte
    (100, 8 << 20, "inflates past the 100 bytes"),  # understates it: inflation stops one byte past
])
def test_a_bomb_becomes_one_undecodable_per_record_it_declares(declared, zeros, says):
    data = gzipped("bomb", zeros=zeros)
    got = list(chunk_entries(sub_batch(data, 3, declared), 1))
    assert len(got) == 3 and all(isinstance(g, Undecodable) and says in g.problem for g in got)
    assert b"hostile-bomb" in got[0].raw  # the compressed bytes, whose gzip header names the input


def test_an_unknown_compression_type_is_undecodable_not_a_crash():
    [got] = list(chunk_entries(sub_batch(b"zstd?", 1, 10, kind=4), 1))
    assert isinstance(got, Undecodable) and "compression type 4" in got.problem
    assert MAX_BATCH_BYTES >= 1 << 20


@pytest.mark.parametrize("raw, says", [
    (b"hostile-x plain bytes", "not an AMQP 1.0 message"),
    (amqp(good("x"), amqp_map(b"\x45", b"\xa1\x01x")), "unhashable type: 'list'"),
    (amqp(good("x"), amqp_map(b"\xc1\x01\x00", b"\x40")), "unhashable type: 'dict'"),
])
def test_entries_rstream_cannot_decode_keep_their_bytes(raw, says):
    entry = decode_entry(raw)
    assert says in entry.problem and entry.raw == raw


def test_an_entry_without_a_data_section_has_an_empty_body():
    entry = decode_entry(b"\x00\x53\x74\xc1\x01\x00")  # application properties, an empty map, no body
    assert entry.problem is None and entry.body == b""


# -- kombu's compression header --------------------------------------------------------------------
def test_kombu_decoders_are_bounded():
    decode = compression.BOUNDED["application/x-gzip"]
    assert decode(zlib.compress(b"x" * 1000)) == b"x" * 1000
    with pytest.raises(compression.InflateRefused, match="inflates past 1048576"):
        decode(zlib_bomb(b"[[]", 4 << 20))
    with pytest.raises(compression.InflateRefused, match="does not inflate"):
        decode("hostile-not zlib")  # py-amqp hands UTF-8 bodies over as str
    with pytest.raises(compression.InflateRefused, match="not accepted"):
        compression.refused("application/zstd")(b"")


def test_the_zlib_bomb_keeps_its_head_readable():
    bomb = zlib_bomb(b'[["hostile-z"]', 1 << 20)
    assert b"hostile-z" in bomb and len(bomb) < 4096
    assert zlib.decompress(bomb) == b'[["hostile-z"]' + b" " * (1 << 20)


# -- Celery canvas ---------------------------------------------------------------------------------
def test_the_kits_own_chain_passes_and_nothing_else_does():
    env = good("v").decode()
    own = [signature("video.notify", env, immutable=False, options={"task_id": "a", "reply_to": "b"}),
           signature("video.thumbnail", env, immutable=False, options={"task_id": "c", "reply_to": "b"})]
    assert chain_after("video.transcode") == ["video.notify", "video.thumbnail"] and chain_after("signup") == []
    assert canvas_problem("video.transcode", [env], {"chain": own, "callbacks": None}) is None
    assert canvas_problem("video.thumbnail", [{"r": 1}, env], {"chain": own[:1]}) is None
    assert "not the pipeline's next steps" in canvas_problem("video.transcode", [env], {"chain": own[::-1]})
    assert "envelope" in canvas_problem("video.transcode", ["other"], {"chain": own})
    assert "'callbacks'" in canvas_problem("signup", [env], {"callbacks": [signature("signup", env)]})
    assert "'chord'" in canvas_problem("signup", [env], {"chord": {}})
    assert "options" in canvas_problem("video.thumbnail", [{}, env], {"chain": [
        {**own[0], "options": {"link": [signature("signup")]}}]})


# -- Dramatiq pipelines ----------------------------------------------------------------------------
class _Broker:
    """Enough of a Dramatiq broker for message_problem: the kit's actors by name."""

    def get_actor(self, name):
        import dramatiq

        import dramatiq_app.actors as actors  # noqa: F401 - registers the actors on the module broker
        return dramatiq.get_broker().get_actor(name)


def test_a_pipe_target_must_be_the_pipelines_next_step():
    env = good("p").decode()
    step = {"queue_name": "dramatiq.video.thumbnail", "actor_name": "video.thumbnail", "args": [env],
            "kwargs": {}, "options": {}, "message_id": "m", "message_timestamp": 1}
    assert next_step("video.transcode") == "video.thumbnail" and next_step("signup") is None
    assert "no pipeline step" in options_problem({"pipe_target": step}, _Broker(), 0, "signup", [env])
    assert "'pipe_ignore'" in options_problem({"pipe_ignore": True}, _Broker(), 0, "video.transcode", [env])
    assert "not this message's envelope" in options_problem({"pipe_target": {**step, "args": ["x"]}}, _Broker(), 0,
                                                            "video.transcode", [env])


# -- kombu records on Kafka ------------------------------------------------------------------------
@pytest.mark.parametrize("changes, says", [
    ({"properties__delivery_tag": [1]}, "delivery_tag is list"),
    ({"headers": [1]}, "headers is list"),
    ({"content-type": 7}, "content-type is int"),
    ({"body": {"a": 1}}, "body is dict"),
])
def test_kombu_records_of_the_wrong_types_are_named(changes, says):
    assert says in record_problem(kombu_record("k", **changes))
    assert record_problem(kombu_record("k")) is None


# -- per-stack declarations ------------------------------------------------------------------------
def test_stack_hostile_outcomes_name_corpus_inputs():
    names = {h.name for h in CORPUS}
    for alias in STACKS:
        declared = load_stack(alias).hostile_outcomes
        assert set(declared) <= names, (alias, set(declared) - names)
        assert all(v == "refused" or v == "effect" or v.startswith("dead: ") for v in declared.values())
