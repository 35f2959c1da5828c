"""Write usage rows as gzip CSV part files, the way the real Usage API delivers an export.

Each part is a gzip member holding a complete CSV: its own header line, then up to
``rows_per_part`` rows; LF line endings. Two file dialects, as real exports come in:

* ``"2024"`` (the default): no quoting, ``\\N`` for null, as in the real 2024 export;
* ``"2026"``: every header name and field in double quotes, the empty string for null, as in a
  header CircleCI-Labs captured live in 2026 (circleci-data-facts.md §4).

Either way a value with a comma, quote or line break is refused rather than written (the 2024
files cannot carry one, and the generator never makes one). The gzip header carries
no file name and a zero mtime, like the real files (FLG = 0), which also makes the bytes
reproducible: the same rows always give the same parts.

A part is written under a temporary name in the destination directory and renamed into place
only when complete, so anything serving the directory never sees half a part.
"""

from __future__ import annotations

import gzip
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES, NULL_MARKER

__all__ = ["FILE_DIALECTS", "SchemaDrift", "write_parts"]

FILE_DIALECTS = ("2024", "2026")

# Lines joined per gzip write: large enough to amortise the call overhead, small enough that
# memory stays far below one part's worth of text.
_BATCH_ROWS = 4096
# Level 3 compresses these rows about 6:1 (the real files: about 5:1) at ~3x the speed of zlib's
# default level 6, which alone would cost about as much time as generating the rows.
_COMPRESS_LEVEL = 3


@dataclass(frozen=True)
class SchemaDrift:
    """Fault injection: the file's columns differ from the documented 48."""

    extra_columns: tuple[str, ...] = ()  # appended at the end of the header, each value "x"
    missing_columns: tuple[str, ...] = ()  # removed from header and rows

    def __post_init__(self) -> None:
        unknown = [c for c in self.missing_columns if c not in EXPORT_COLUMN_NAMES]
        if unknown:
            raise ValueError(f"missing_columns not in the export format: {unknown}")
        clash = [c for c in self.extra_columns if c in EXPORT_COLUMN_NAMES]
        if clash:
            raise ValueError(f"extra_columns already in the export format: {clash}")
        for name in self.extra_columns:
            if not name or any(ch in name for ch in ',"\r\n'):
                raise ValueError(f"bad extra column name {name!r}")


def write_parts(
    rows: Iterable[tuple[str, ...]],
    dest_dir: Path,
    *,
    rows_per_part: int,
    drift: SchemaDrift = SchemaDrift(),  # frozen, so one shared default is safe
    name_prefix: str = "usage",
    dialect: str = "2024",
) -> list[Path]:
    """Streams rows into gzip CSV parts of at most rows_per_part rows each, named
    f"{name_prefix}_{i:04d}.csv.gz", each with its own header line; LF line endings; returns
    paths in order; zero rows -> [] and no file.

    Never holds more than one part's worth of text in memory (writes incrementally through
    gzip). Rows must have the 48 export columns; a value containing a comma, a double quote or
    a line break raises ValueError (the 2024 format has no quoting to carry it). dialect: see
    the module docstring.
    """
    if rows_per_part < 1:
        raise ValueError("rows_per_part must be >= 1")
    if dialect not in FILE_DIALECTS:
        raise ValueError(f"dialect must be one of {FILE_DIALECTS}, not {dialect!r}")
    quoted = dialect == "2026"
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)

    header_names = [c for c in EXPORT_COLUMN_NAMES if c not in drift.missing_columns]
    header_names.extend(drift.extra_columns)
    header = '"' + '","'.join(header_names) + '"\n' if quoted else ",".join(header_names) + "\n"
    keep = (
        [i for i, c in enumerate(EXPORT_COLUMN_NAMES) if c not in drift.missing_columns]
        if drift.missing_columns
        else None
    )
    suffix = (',"x"' if quoted else ",x") * len(drift.extra_columns)
    # Every line of a part must carry exactly this many commas; checking the count on each
    # joined batch catches stray commas (and short/long rows) at C speed.
    commas_per_line = len(header_names) - 1

    paths: list[Path] = []
    iterator = iter(rows)
    for first in iterator:
        final = dest_dir / f"{name_prefix}_{len(paths):04d}.csv.gz"
        part_rows = chain((first,), islice(iterator, rows_per_part - 1))
        _write_part(final, header, part_rows, keep, suffix, commas_per_line, quoted)
        paths.append(final)
    return paths


def _write_part(
    final: Path,
    header: str,
    rows: Iterator[tuple[str, ...]],
    keep: list[int] | None,
    suffix: str,
    commas_per_line: int,
    quoted: bool,
) -> None:
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # filename="" and mtime=0: no FNAME field (the real header has FLG = 0) and
        # byte-for-byte reproducible output.
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=_COMPRESS_LEVEL, mtime=0
            ) as gz,
        ):
            gz.write(header.encode())
            while True:
                batch = list(islice(rows, _BATCH_ROWS))
                if not batch:
                    break
                for row in batch:
                    if len(row) != len(EXPORT_COLUMN_NAMES):
                        raise ValueError(
                            f"row has {len(row)} fields, expected {len(EXPORT_COLUMN_NAMES)}"
                        )
                if keep is not None:
                    batch = [tuple(row[i] for i in keep) for row in batch]
                if quoted:
                    lines = [
                        '"' + '","'.join("" if v == NULL_MARKER else v for v in row) + '"'
                        for row in batch
                    ]
                else:
                    lines = [",".join(row) for row in batch]
                text = (suffix + "\n").join(lines) + suffix + "\n"
                quotes = 2 * (commas_per_line + 1) * len(lines) if quoted else 0
                if (
                    text.count(",") != commas_per_line * len(lines)
                    or text.count("\n") != len(lines)
                    or text.count('"') != quotes
                    or "\r" in text
                ):
                    raise ValueError(
                        "a value contains a comma, double quote or line break; the export "
                        "format has no quoting"
                    )
                gz.write(text.encode())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
