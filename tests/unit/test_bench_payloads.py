"""The bench's padded envelopes are ones the kit's workers accept (a rejected one never completes: the
bench then waits 600 s for completions that cannot come, as the 10 KB payload point once did)."""
from __future__ import annotations

import pytest

from queuekit.bench.measure import envelopes
from queuekit.core.envelope import decode, encode


@pytest.mark.parametrize("size", [None, 10_000, 100_000])
@pytest.mark.parametrize("mode", ["noop", "io", "cpu"])
def test_every_payload_size_of_the_curves_decodes_at_about_its_size(size, mode):
    for env in envelopes(3, mode, size, seed=1):
        data = encode(env)
        assert decode(data).id == env.id  # MalformedMessage here is the bug
        if size:
            assert abs(len(data) - size) <= 0.01 * size, len(data)
