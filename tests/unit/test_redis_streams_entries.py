"""What the redis_streams consumer takes from an entry, broker-free: its one envelope field, or a reason."""
from __future__ import annotations

import pytest

from queuekit.core.envelope import MalformedMessage
from redis_streams_app.consumers import MAX_ENTRY_BYTES, MAX_FIELDS, envelope_of, render


def test_the_envelope_field_is_taken_and_other_fields_are_ignored():
    assert envelope_of({b"envelope": b"{}"}) == b"{}"
    assert envelope_of({b"\xff\xfe": b"\x80", b"envelope": b"{}"}) == b"{}"


@pytest.mark.parametrize(("fields", "reason"), [
    ({b"m": b"x"}, "no 'envelope' field (fields: b'm')"),
    ({b"envelope": b"{}", **{f"f{i}".encode(): b"" for i in range(MAX_FIELDS)}}, f"over {MAX_FIELDS}"),
    ({b"envelope": b"{}", b"pad": bytes(MAX_ENTRY_BYTES)}, f"over the {MAX_ENTRY_BYTES}-byte limit"),
])
def test_an_entry_that_is_not_ours_is_malformed_with_its_reason(fields, reason):
    with pytest.raises(MalformedMessage, match=reason.replace("(", r"\(").replace(")", r"\)")):
        envelope_of(fields)


def test_a_foreign_entry_is_dead_lettered_with_every_field():
    assert render({b"m": b"hostile-x", b"\xff": b"\x00"}) == b"m: hostile-x\n\xff: \x00"
