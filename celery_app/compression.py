"""kombu's ``compression`` header, inflated no further than a task message may be.

Any producer may set ``compression: application/x-gzip`` (or bzip2, lzma, ...) on a task message, and
kombu inflates the body as it builds the message (``kombu.message.Message.__init__`` ->
``compression.decompress``: ``zlib.decompress`` with no bound) — in the worker, before any Celery or
kit code runs, and before the frame limit (``frames.MAX_FRAME_BYTES``) can look at the size: a few
hundred bytes inflate to hundreds of MiB (observed: worker RSS ~450 MB).

``install()`` replaces kombu's decoders in its registry with streaming ones that stop at
``MAX_INFLATED_BYTES`` and raise there; kombu records the error on the message (``Message.errors``),
the body stays the bytes that arrived, and ``frames.frame_problem`` dead-letters it with those bytes
and the reason. Compression kinds the kit cannot bound (brotli, zstd when installed) are refused the
same way. The kit's own producers never compress (a task message is < 2 KiB).
"""
from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable

from kombu import compression

MAX_INFLATED_BYTES = 1024 * 1024  # the frame limit (frames.MAX_FRAME_BYTES): past it the frame is refused anyway


class InflateRefused(ValueError):
    pass


def bounded(make: Callable[[], object], name: str, limit: int = MAX_INFLATED_BYTES) -> Callable[[bytes], bytes]:
    """A decoder that inflates with ``max_length`` (one byte past ``limit``), never more."""

    def decode(body: bytes | str) -> bytes:
        inflater = make()
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)  # py-amqp decodes UTF-8 bodies to str
        try:
            out = inflater.decompress(data, limit + 1)  # type: ignore[attr-defined]
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            raise InflateRefused(f"{name} body does not inflate: {exc}") from None
        if len(out) > limit:
            raise InflateRefused(f"{name} body inflates past {limit} bytes (refused there)")
        return out

    return decode


def refused(name: str) -> Callable[[bytes], bytes]:
    def decode(body: bytes) -> bytes:
        raise InflateRefused(f"{name} compression is not accepted (no bounded decoder)")

    return decode


BOUNDED = {
    "application/x-gzip": bounded(zlib.decompressobj, "zlib"),
    "application/x-bz2": bounded(bz2.BZ2Decompressor, "bzip2"),
    "application/x-lzma": bounded(lzma.LZMADecompressor, "lzma"),
}


def install() -> None:
    """Every decoder kombu has registered: bounded, or refusing (its encoders stay as they are)."""
    for content_type in list(compression._decoders):
        compression._decoders[content_type] = BOUNDED.get(content_type) or refused(content_type)
