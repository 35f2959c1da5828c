"""Verifying a gzip stream while it downloads, without a second pass over the file.

A truncated or corrupt part must fail the download, not the load an hour later, and the row count
is needed for metadata anyway, so both come from one incremental decompression.
"""

from __future__ import annotations

import zlib


class GzipStreamVerifier:
    """Feed compressed chunks in order; `finish()` raises ValueError unless the stream was complete.

    Handles multi-member gzip files (concatenated members are valid gzip). Counts decompressed bytes
    and newline characters (a part's data rows are its lines minus the header).
    """

    def __init__(self) -> None:
        self._decompressor = zlib.decompressobj(wbits=31)
        self.compressed_bytes = 0
        self.decompressed_bytes = 0
        self.newlines = 0
        self._last_byte = b""
        self._member_complete = False

    def feed(self, chunk: bytes) -> None:
        self.compressed_bytes += len(chunk)
        data = chunk
        while data:
            try:
                out = self._decompressor.decompress(data)
            except zlib.error as exc:
                raise ValueError(f"not a valid gzip stream ({exc})") from None
            self._count(out)
            if self._decompressor.eof:
                # The rest (if any) is the next gzip member.
                data = self._decompressor.unused_data
                self._decompressor = zlib.decompressobj(wbits=31)
                self._member_complete = True
            else:
                data = b""
                self._member_complete = False

    def finish(self) -> None:
        if self.compressed_bytes == 0:
            raise ValueError("the file is empty, not gzip")
        if not self._member_complete:
            raise ValueError("the gzip stream ends early (truncated file)")

    @property
    def data_rows(self) -> int:
        """Lines after the header, counting a last line without its newline."""
        lines = self.newlines + (1 if self._last_byte not in (b"", b"\n") else 0)
        return max(lines - 1, 0)

    def _count(self, out: bytes) -> None:
        if out:
            self.decompressed_bytes += len(out)
            self.newlines += out.count(b"\n")
            self._last_byte = out[-1:]
