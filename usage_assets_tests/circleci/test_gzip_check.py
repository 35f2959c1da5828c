"""Streaming gzip verification used by downloads."""

from __future__ import annotations

import gzip

import pytest

from usage_assets.circleci.gzip_check import GzipStreamVerifier

CSV = b"A,B\n1,2\n3,4\n5,6\n"


def feed_in_chunks(data: bytes, size: int) -> GzipStreamVerifier:
    verifier = GzipStreamVerifier()
    for offset in range(0, len(data), size):
        verifier.feed(data[offset : offset + size])
    return verifier


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_complete_stream_counts_rows(chunk: int) -> None:
    verifier = feed_in_chunks(gzip.compress(CSV), chunk)
    verifier.finish()
    assert verifier.data_rows == 3
    assert verifier.decompressed_bytes == len(CSV)


def test_last_line_without_newline_counts() -> None:
    verifier = feed_in_chunks(gzip.compress(CSV.rstrip(b"\n")), 5)
    verifier.finish()
    assert verifier.data_rows == 3


def test_multi_member_gzip_is_valid() -> None:
    verifier = feed_in_chunks(gzip.compress(b"A,B\n1,2\n") + gzip.compress(b"3,4\n"), 3)
    verifier.finish()
    assert verifier.data_rows == 2


def test_header_only_has_zero_rows() -> None:
    verifier = feed_in_chunks(gzip.compress(b"A,B\n"), 4)
    verifier.finish()
    assert verifier.data_rows == 0


def test_truncated_stream_is_refused() -> None:
    data = gzip.compress(CSV * 100)
    verifier = feed_in_chunks(data[: len(data) // 2], 16)
    with pytest.raises(ValueError, match="truncated"):
        verifier.finish()


def test_corrupt_stream_is_refused() -> None:
    data = bytearray(gzip.compress(CSV * 100))
    for i in range(20, 40):
        data[i] ^= 0xFF
    with pytest.raises(ValueError):
        verifier = feed_in_chunks(bytes(data), 16)
        verifier.finish()


def test_empty_and_plain_text_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        GzipStreamVerifier().finish()
    with pytest.raises(ValueError, match="not a valid gzip"):
        GzipStreamVerifier().feed(CSV)
