"""Turn one downloaded usage-export part (a gzip CSV) into a typed, validated polars DataFrame.

Why this module looks the way it does:

* **The file carries no types.** Every value is text; the types come from
  :mod:`usage_assets.circleci.export_format`, never from schema inference (which guesses from the first
  rows and silently turns a later bad value into a null). Integers, numbers and booleans are
  parsed by polars' reader as it reads; every other column is read as ``pl.String`` and cast
  once, with vectorised polars expressions. A part the reader rejects is read again all-String,
  so both roads end in the same checks.
* **A bad value must fail the load, not become a null.** Casts run non-strict (so one pass does
  all columns) and are then checked: a column whose null count grew during the cast held text
  that is not a value of its type. The error names the file, the column, one offending value and
  its line.
* **Headers are matched by name, case-insensitively.** The real files are UPPER_SNAKE, some
  exports lower-case them, and the column order differs from the spec's field list, so position
  means nothing. Unknown extra columns (CircleCI adds columns over time) are read and dropped;
  callers report them via :func:`check_header`. Missing optional columns become typed all-null
  columns; missing required ones raise :class:`MissingColumnsError`.
* **Speed and memory.** Parts hold ~250k rows. polars' native reader decompresses the gzip
  once (faster than Python's zlib) and parses on all cores; nothing runs Python per row on the
  normal path. Numbers parsed while reading skip a 16-byte text view per value (a third of the
  peak), and millisecond timestamps take polars' fixed-width parser (see
  ``_TIMESTAMP_FAST_FORMAT``). The result is rechunked into one chunk per column.
* **Ragged rows.** polars raises on a row with too many fields but silently pads a row with too
  few with nulls. A padded row always has a null in the file's last column, so only when that
  column holds nulls do we pay for a second, streaming look at the raw bytes (a separator
  count; a quoted file is parsed with the csv module instead) to tell a genuinely null last
  value from a short row. The real files end with ``TOTAL_CREDITS``, which is never null, so
  they never take that path.
* **Damaged downloads.** Every gzip problem (not gzip, corrupt, truncated) is reported as an
  :class:`ExportFormatError` saying so, even when polars first stumbles over the garbage as a
  CSV error.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import polars as pl

from usage_assets.circleci.export_format import (
    COLUMN_KINDS,
    CREDIT_COMPONENT_COLUMNS,
    DATE_FORMAT,
    EXPORT_COLUMN_NAMES,
    FALSE_TEXT,
    NULL_SPELLINGS,
    TOTAL_CREDITS_COLUMN,
    TRUE_TEXT,
    ColumnKind,
)

__all__ = [
    "CLEAN_SCHEMA",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ExportFormatError",
    "HeaderCheck",
    "MissingColumnsError",
    "check_header",
    "clean_column_expressions",
    "clean_part",
    "read_header",
    "snake_case",
]

# Without these a row cannot be attributed (org / project / workflow / job), dated, or costed,
# so a part lacking any of them is useless and must fail loudly rather than load nulls.
REQUIRED_COLUMNS: frozenset[str] = frozenset(
    {
        "ORGANIZATION_ID",
        "PROJECT_ID",
        "PROJECT_NAME",
        "WORKFLOW_ID",
        "WORKFLOW_NAME",
        "JOB_ID",
        "JOB_RUN_DATE",
        "JOB_BUILD_STATUS",
        *CREDIT_COMPONENT_COLUMNS,
        TOTAL_CREDITS_COLUMN,
    }
)

# Documented columns that may be absent (e.g. the JOB_RUN_*_AT columns only exist since
# Aug 2024); in documented order.
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(
    name for name in EXPORT_COLUMN_NAMES if name not in REQUIRED_COLUMNS
)

_KIND_DTYPES: dict[ColumnKind, pl.DataType] = {
    ColumnKind.TEXT: pl.String(),
    ColumnKind.UUID: pl.String(),
    ColumnKind.DATE: pl.Date(),
    ColumnKind.TIMESTAMP: pl.Datetime("ms", time_zone="UTC"),
    ColumnKind.BOOLEAN: pl.Boolean(),
    ColumnKind.INTEGER: pl.Int64(),
    ColumnKind.NUMBER: pl.Float64(),
}

# What the user is told a value should look like, per kind.
# Kinds that polars' CSV reader parses as the String road does (see test_cleaning's
# both-reads-agree test); dates are not among them: the reader also takes 2024/11/10 and
# 10-11-2024. For numbers the reader ignores a leading space or tab and reads a value of only
# spaces and tabs as null, so the String road does the same (_NUMBER_PADDING, _blank_numbers_to_null).
_READER_PARSED_KINDS: frozenset[ColumnKind] = frozenset(
    {ColumnKind.INTEGER, ColumnKind.NUMBER, ColumnKind.BOOLEAN}
)
_NUMERIC_KINDS: frozenset[ColumnKind] = frozenset({ColumnKind.INTEGER, ColumnKind.NUMBER})
_NUMBER_PADDING = " \t"

_KIND_EXPECTATIONS: dict[ColumnKind, str] = {
    ColumnKind.DATE: "a date YYYY-MM-DD",
    ColumnKind.TIMESTAMP: "a timestamp YYYY-MM-DD HH:MM:SS[.fff]",
    ColumnKind.BOOLEAN: "true or false",
    ColumnKind.INTEGER: "an integer",
    ColumnKind.NUMBER: "a finite number",
}

# The real files write milliseconds, which polars parses with its fixed-width fast path (several
# times faster than chrono). Only a column in which that leaves a
# value unparsed is parsed again with chrono's `%.f`, which takes a fraction of any length or
# none, so whole-second and microsecond timestamps load too.
_TIMESTAMP_FAST_FORMAT = "%Y-%m-%d %H:%M:%S.%3f"
_TIMESTAMP_PARSE_FORMAT = "%Y-%m-%d %H:%M:%S%.f"

USAGE_DATE_COLUMN = "usage_date"
EXPORT_JOB_ID_COLUMN = "export_job_id"

_GZIP_MAGIC = b"\x1f\x8b"
# A header of 48 names is ~1 KB; refuse to buffer an unbounded "first line" of a broken file.
_MAX_HEADER_BYTES = 1 << 20
# Slow-path streaming chunk: big enough for C-speed scans, small beside a 250k-row frame.
_STREAM_CHUNK_BYTES = 16 << 20

_WHAT_TO_DO = (
    "Re-download this part from the export job's download_urls; if a fresh copy fails the same "
    "way, CircleCI may have changed the export format and export_format.py needs updating."
)


def snake_case(column: str) -> str:
    """Export header name -> output column name: ``"JOB_RUN_SECONDS"`` -> ``"job_run_seconds"``.

    Surrounding whitespace is dropped and any run of characters other than letters and digits
    becomes one underscore, so a stray ``"Job Run-Seconds "`` still maps to a usable name.
    """
    return re.sub(r"[^0-9a-z]+", "_", column.strip().lower()).strip("_")


def _normalize_header_name(name: str) -> str:
    """Header cell -> the UPPER_SNAKE name export_format uses (matching is case-insensitive)."""
    return name.strip().lstrip("\ufeff").strip().upper()


def _parse_header_line(line: str) -> list[str]:
    """Split one header line with a real CSV parser (names may be quoted) and normalise them."""
    rows = list(csv.reader([line.rstrip("\r\n")]))
    if not rows:
        return []
    return [_normalize_header_name(cell) for cell in rows[0]]


class ExportFormatError(ValueError):
    """A downloaded part is not a usable usage export.

    Base for every bad-file error raised here. The message names the file (basename only),
    the column, line and a sample bad value where known, and says what to do. The same facts are
    kept as attributes so callers can log or tag them without parsing the message.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        line: int | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.column = column
        self.line = line
        self.value = value


class DamagedPartError(ExportFormatError):
    """The part's gzip stream is damaged (corrupt, truncated, not gzip): a bad copy on disk, which
    a fresh download replaces, unlike a file CircleCI wrote in a format we do not read."""


class MissingColumnsError(ExportFormatError):
    """The header lacks one or more of :data:`REQUIRED_COLUMNS`; ``missing`` lists them."""

    def __init__(
        self, message: str, *, missing: Sequence[str] = (), file: str | None = None
    ) -> None:
        super().__init__(message, file=file)
        self.missing: tuple[str, ...] = tuple(missing)


@dataclass(frozen=True)
class HeaderCheck:
    """How a part's header compares with the 48 documented columns.

    Every field is a tuple of UPPER_SNAKE names. ``missing_*`` are in documented order,
    ``unknown`` and ``duplicated`` in file order. ``duplicated`` lists names that occur more than
    once after case-folding; :func:`clean_part` refuses such a file because it cannot tell which
    copy to trust.
    """

    missing_required: tuple[str, ...]
    missing_optional: tuple[str, ...]
    unknown: tuple[str, ...]
    duplicated: tuple[str, ...] = ()

    @property
    def loadable(self) -> bool:
        """True when :func:`clean_part` would accept this header."""
        return not self.missing_required and not self.duplicated


def check_header(header: Sequence[str]) -> HeaderCheck:
    """Compare a header (as from :func:`read_header`) with the documented columns.

    Pure and cheap, so callers can report missing optional and unknown columns (which
    :func:`clean_part` tolerates silently) before or after loading. Names are compared
    case-insensitively and without surrounding whitespace; order is irrelevant.
    """
    names = [_normalize_header_name(name) for name in header]
    present = set(names)
    documented = set(EXPORT_COLUMN_NAMES)
    counts = Counter(names)
    return HeaderCheck(
        missing_required=tuple(
            c for c in EXPORT_COLUMN_NAMES if c in REQUIRED_COLUMNS and c not in present
        ),
        missing_optional=tuple(c for c in OPTIONAL_COLUMNS if c not in present),
        unknown=tuple(dict.fromkeys(n for n in names if n not in documented)),
        duplicated=tuple(dict.fromkeys(n for n in names if counts[n] > 1)),
    )


def _gzip_damaged(name: str, exc: BaseException) -> DamagedPartError:
    """The one error for every kind of gzip damage, whichever decompressor noticed it."""
    return DamagedPartError(
        f"{name}: damaged, not a valid gzip file (corrupt or truncated: {exc}). {_WHAT_TO_DO}",
        file=name,
    )


def read_header(path: Path) -> list[str]:
    """Header names of a gzip CSV part, upper-cased and stripped, in file order.

    Decompresses only as far as the first line, so it is cheap enough to call on every part
    before loading (e.g. to report new columns). Raises :class:`ExportFormatError` for a file
    that is not gzip, is corrupt before the first line ends, is not UTF-8, or has no header.
    """
    name = Path(path).name
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.readline(_MAX_HEADER_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        raise _gzip_damaged(name, exc) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _verify_gzip(Path(path))  # bytes damaged near the start decode as garbage
        raise ExportFormatError(
            f"{name}: the header line is not UTF-8 ({exc}). {_WHAT_TO_DO}", file=name, line=1
        ) from exc
    header = _parse_header_line(text)
    if not any(header):
        raise ExportFormatError(
            f"{name}: the file is empty; a part must start with a header line. {_WHAT_TO_DO}",
            file=name,
            line=1,
        )
    return header


CLEAN_SCHEMA: dict[str, pl.DataType] = {
    **{snake_case(name): _KIND_DTYPES[kind] for name, kind in COLUMN_KINDS.items()},
    USAGE_DATE_COLUMN: pl.Date(),
    EXPORT_JOB_ID_COLUMN: pl.String(),
}
"""Output columns of :func:`clean_part`, in order: the 48 export columns in snake_case with
their types, then ``usage_date`` (= ``job_run_date``, the partition key) and ``export_job_id``
(lineage: which export job delivered the row)."""


def _typed_expression(column: str, kind: ColumnKind) -> pl.Expr:
    """Non-strict conversion of one String column to its type (bad text -> null).

    Non-strict so that all columns convert in one pass without an exception aborting it;
    :func:`_check_conversions` then turns any null that the conversion introduced into an error.
    """
    source = pl.col(column)
    if kind in (ColumnKind.TEXT, ColumnKind.UUID):
        return source
    if kind is ColumnKind.DATE:
        return source.str.to_date(DATE_FORMAT, strict=False)
    if kind is ColumnKind.TIMESTAMP:
        return _timestamp_expression(source, _TIMESTAMP_FAST_FORMAT)
    if kind is ColumnKind.BOOLEAN:
        return source.str.to_lowercase().replace_strict(
            {TRUE_TEXT: True, FALSE_TEXT: False}, default=None, return_dtype=pl.Boolean
        )
    if kind is ColumnKind.INTEGER:
        return source.str.strip_chars(_NUMBER_PADDING).cast(pl.Int64, strict=False)
    if kind is ColumnKind.NUMBER:
        return source.str.strip_chars(_NUMBER_PADDING).cast(pl.Float64, strict=False)
    raise AssertionError(f"unhandled column kind {kind!r}")  # pragma: no cover


def _timestamp_expression(source: pl.Expr, parse_format: str) -> pl.Expr:
    # The text is naive UTC: time_zone="UTC" labels it as UTC, it does not shift it.
    return source.str.to_datetime(parse_format, time_unit="ms", time_zone="UTC", strict=False)


def _blank_numbers_to_null(raw: pl.DataFrame) -> pl.DataFrame:
    """A number column's value of only spaces and tabs is a null, as the CSV reader reads it."""
    blank_able = [
        column
        for column, dtype in raw.schema.items()
        if dtype == pl.String and COLUMN_KINDS.get(column) in _NUMERIC_KINDS
    ]
    if not blank_able:
        return raw
    return raw.with_columns(
        pl.when(pl.col(c).str.strip_chars(_NUMBER_PADDING) == "")
        .then(None)
        .otherwise(pl.col(c))
        .alias(c)
        for c in blank_able
    )


def _reparse_irregular_timestamps(raw: pl.DataFrame, typed: pl.DataFrame) -> pl.DataFrame:
    """Parse again, with the lenient format, each timestamp column the fast format left a
    value of unparsed (a column without any such value costs a null count)."""
    raw_nulls = raw.null_count().row(0, named=True)
    typed_nulls = typed.null_count().row(0, named=True)
    again = [
        _timestamp_expression(pl.col(column), _TIMESTAMP_PARSE_FORMAT).alias(snake_case(column))
        for column, kind in COLUMN_KINDS.items()
        if kind is ColumnKind.TIMESTAMP
        and column in raw_nulls
        and typed_nulls[snake_case(column)] > raw_nulls[column]
    ]
    if not again:
        return typed
    return typed.with_columns(raw.select(again).get_columns())


def clean_column_expressions(present: Mapping[str, pl.DataType]) -> list[pl.Expr]:
    """Expressions producing the 48 typed export columns, in CLEAN_SCHEMA order.

    ``present`` is the schema (UPPER_SNAKE name -> dtype) of the frame the expressions will run
    on: a column already of its type is taken as it is, a String column is converted, and each
    documented column not present becomes a typed all-null column. Every expression is aliased to its snake_case output name. Conversions are
    non-strict and timestamps take only the millisecond format: pair them with a lenient re-parse
    of timestamp columns and a null-count check (as :func:`clean_part` does) to fail on bad
    values.
    """
    expressions: list[pl.Expr] = []
    for column, kind in COLUMN_KINDS.items():
        out = snake_case(column)
        if column in present and present[column] == _KIND_DTYPES[kind]:
            expressions.append(pl.col(column).alias(out))
        elif column in present:
            expressions.append(_typed_expression(column, kind).alias(out))
        else:
            expressions.append(pl.lit(None, dtype=_KIND_DTYPES[kind]).alias(out))
    return expressions


def _line_of_row(row_index: int) -> int:
    """1-based file line of 0-based data row (header is line 1; exact unless a quoted value
    spans lines)."""
    return row_index + 2


def _check_conversions(name: str, raw: pl.DataFrame, typed: pl.DataFrame) -> None:
    """Raise if a conversion turned non-null text into null, or a number is NaN/infinite."""
    raw_nulls = raw.null_count().row(0, named=True)
    typed_nulls = typed.null_count().row(0, named=True)
    for column, kind in COLUMN_KINDS.items():
        if column not in raw_nulls or kind in (ColumnKind.TEXT, ColumnKind.UUID):
            continue
        out = snake_case(column)
        bad_count = typed_nulls[out] - raw_nulls[column]
        if bad_count:
            bad = raw[column].is_not_null() & typed[out].is_null()
            _raise_bad_value(name, column, kind, raw[column], bad, bad_count)
    float_columns = [
        snake_case(c) for c, kind in COLUMN_KINDS.items() if kind is ColumnKind.NUMBER and c in raw
    ]
    if float_columns and typed.height:
        non_finite = typed.select(
            [(~pl.col(c).is_finite()).sum().alias(c) for c in float_columns]
        ).row(0, named=True)
        for out, count in non_finite.items():
            if count:
                column = out.upper()
                bad = ~typed[out].is_finite().fill_null(True)
                _raise_bad_value(name, column, ColumnKind.NUMBER, raw[column], bad, count)


def _raise_bad_value(
    name: str, column: str, kind: ColumnKind, values: pl.Series, bad: pl.Series, bad_count: int
) -> NoReturn:
    """Build the error for the first offending value of one column (error path only)."""
    index = int(bad.arg_true()[0])
    value = values[index]
    line = _line_of_row(index)
    raise ExportFormatError(
        f"{name}: column {column} must hold {_KIND_EXPECTATIONS[kind]} (or a null written as "
        f"\\\\N, \\N or empty) but line {line} has {value!r} "
        f"({bad_count} bad value(s) in this column). {_WHAT_TO_DO}",
        file=name,
        column=column,
        line=line,
        value=value,
    )


def _check_job_ids(name: str, typed: pl.DataFrame) -> None:
    """Every row needs its JOB_ID: it is the key a load replaces rows by. Rows without one would be
    merged into one "duplicate" and replace real rows, so the whole part is refused first."""
    missing = typed[snake_case("JOB_ID")].is_null()
    count = int(missing.sum())
    if count:
        line = _line_of_row(int(missing.arg_true()[0]))
        raise ExportFormatError(
            f"{name}: line {line} has no JOB_ID ({count} row(s) in this part without one); "
            f"every job run row needs its id, which loads replace rows by. {_WHAT_TO_DO}",
            file=name,
            column="JOB_ID",
            line=line,
        )


def _verify_gzip(path: Path) -> None:
    """Decompress the whole part (streaming) and raise if the gzip stream is damaged.

    polars decompresses and parses in step, so a damaged stream can surface first as a CSV
    error (garbage with too many fields, invalid UTF-8). Called on that error path only, so the
    user is told the real cause: a damaged download.
    """
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(_STREAM_CHUNK_BYTES):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_damaged(path.name, exc) from exc


def _separators_if_unquoted(path: Path) -> int | None:
    """Count the separators in the whole decompressed part, or None if it uses quotes.

    Streams in chunks so the check adds little memory beside the frame already loaded; byte
    scans only, no per-row Python. Without quotes every separator separates fields, so the
    count is exact; with quotes a separator may be data, and the caller must parse instead.
    """
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_STREAM_CHUNK_BYTES):
                if b'"' in chunk:
                    return None
                total += chunk.count(b",")
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_damaged(path.name, exc) from exc
    return total


def _first_ragged_record(path: Path, n_fields: int) -> tuple[int, int] | None:
    """(line, field count) of the first record whose field count differs from the header's.

    A streaming pass of Python's csv module (memory stays small, but it loops per row in
    Python), so it runs only for a file already known to be ragged, or a quoted file whose last
    column holds nulls. A blank line counts as a record with 0 fields.
    """
    name = path.name
    try:
        with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as text:
            reader = csv.reader(text)
            first_line = 1  # where the next record starts (a quoted value may span lines)
            for record in reader:
                if len(record) != n_fields:
                    return first_line, len(record)
                first_line = reader.line_num + 1
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_damaged(name, exc) from exc
    except csv.Error as exc:
        line = reader.line_num
        raise ExportFormatError(
            f"{name}: malformed CSV near line {line} ({exc}). {_WHAT_TO_DO}", file=name, line=line
        ) from exc
    return None


def _raise_ragged(path: Path, n_fields: int) -> NoReturn:
    """Raise the wrong-field-count error, with the first offending line when it can be found."""
    name = path.name
    found = _first_ragged_record(path, n_fields)
    where = "at least one record has another count (the CSV module could not locate it)"
    line: int | None = None
    if found is not None:
        line, count = found
        where = f"line {line} has {count} field(s)" + (" (a blank line)" if count == 0 else "")
    raise ExportFormatError(
        f"{name}: wrong number of fields: the header has {n_fields} fields but {where}. "
        f"The part is damaged or was edited by hand. {_WHAT_TO_DO}",
        file=name,
        line=line,
    )


def _polars_read(
    path: Path, header: Sequence[str], dtypes: Mapping[str, pl.DataType] | None = None
) -> pl.DataFrame:
    """polars' native reader: columns in `dtypes` parsed as those types, every other column
    String (no inference), null spellings -> null."""
    return pl.read_csv(
        str(path),
        has_header=True,
        new_columns=list(header),
        infer_schema=False,
        schema_overrides=dtypes,
        null_values=list(NULL_SPELLINGS),
        empty_string_is_null=True,
        encoding="utf8",
        raise_if_empty=False,
        glob=False,
    )


def _read_part(path: Path, header: Sequence[str]) -> pl.DataFrame:
    """Read the part, parsing integers, numbers and booleans while reading when that works.

    The reader parses them as the String path's casts do (it also takes surrounding spaces, which
    those casts strip), costs no more than reading text, and spares a 16-byte view per value,
    which is a third of the part's peak memory. Anything it rejects, from a bad value to a damaged
    file, is read again as all-String so that the error names the exact column, value and line.
    """
    parsed_while_reading = {
        column: _KIND_DTYPES[COLUMN_KINDS[column]]
        for column in header
        if COLUMN_KINDS.get(column) in _READER_PARSED_KINDS
    }
    if parsed_while_reading:
        try:
            frame = _polars_read(path, header, parsed_while_reading)
        except (OSError, pl.exceptions.PolarsError):
            pass
        else:
            # NaN and infinity parse as numbers but are errors, whose message must quote the text.
            parsed_floats = [c for c, dtype in parsed_while_reading.items() if dtype == pl.Float64]
            all_finite = frame.select(
                pl.all_horizontal(pl.col(parsed_floats).is_finite().fill_null(True).all())
            ).item()
            if frame.width == len(header) and all_finite:
                return frame
    return _read_strings(path, header)


def _read_strings(path: Path, header: Sequence[str]) -> pl.DataFrame:
    """Parse the part with every column String, turning any failure into an ExportFormatError."""
    name = path.name
    try:
        frame = _polars_read(path, header)
    except FileNotFoundError:
        raise
    except OSError as exc:  # polars reports gzip damage as OSError
        raise _gzip_damaged(name, exc) from exc
    except pl.exceptions.PolarsError as exc:
        _verify_gzip(path)  # a damaged stream can look like a CSV error; report the real cause
        message = str(exc)
        if "more fields" in message:
            _raise_ragged(path, len(header))
        if "utf-8" in message.lower() or "utf8" in message.lower():
            raise ExportFormatError(
                f"{name}: the file is not valid UTF-8 ({message.splitlines()[0]}). {_WHAT_TO_DO}",
                file=name,
            ) from exc
        raise ExportFormatError(
            f"{name}: not a parseable CSV file ({message.splitlines()[0]}). {_WHAT_TO_DO}",
            file=name,
        ) from exc
    if frame.width != len(header):
        raise ExportFormatError(
            f"{name}: the CSV parser found {frame.width} header columns where {len(header)} "
            f"were expected; the header line is malformed. {_WHAT_TO_DO}",
            file=name,
            line=1,
        )
    return frame


def _check_short_rows(path: Path, frame: pl.DataFrame, n_fields: int) -> None:
    """Fail on rows with too few fields, which polars pads with nulls instead of rejecting.

    A padded row has a null in the file's last column, so a last column without nulls (the
    normal case: the real files end with TOTAL_CREDITS) proves there is none, at no cost. Only
    otherwise is the file decompressed again (streaming) and its separators counted: every
    record, header included, must contribute exactly ``n_fields - 1``. A quoted file (none seen
    so far) is parsed record by record with the csv module instead, which is slower.
    """
    if frame.height == 0 or frame.get_column(frame.columns[-1]).null_count() == 0:
        return
    separators = _separators_if_unquoted(path)
    if separators is None:
        if _first_ragged_record(path, n_fields) is not None:
            _raise_ragged(path, n_fields)
    elif separators != (frame.height + 1) * (n_fields - 1):
        _raise_ragged(path, n_fields)


def clean_part(path: Path, *, export_job_id: str) -> pl.DataFrame:
    """One gzip CSV part -> a DataFrame with exactly CLEAN_SCHEMA's columns and types.

    One output row per input row, in file order. Header names are matched case-insensitively
    and in any order; unknown extra columns are dropped (report them with :func:`check_header`);
    missing optional columns become typed all-null columns; ``\\\\N``, ``\\N`` and empty values
    are null. ``usage_date`` is ``job_run_date``; ``export_job_id`` is the given id on every row.
    A part with a header and no rows gives an empty frame with the full schema.

    Raises :class:`MissingColumnsError` when required columns are missing, and
    :class:`ExportFormatError` for anything else wrong with the file: not gzip, corrupt or
    truncated gzip, not UTF-8, duplicate columns, a row with the wrong number of fields, or a
    value that is not of its column's type. Nothing is half-loaded: either the whole part is
    returned or an error is raised.
    """
    path = Path(path)
    name = path.name
    with path.open("rb") as stream:
        magic = stream.read(len(_GZIP_MAGIC))
    if magic != _GZIP_MAGIC:
        what = "an empty file" if not magic else f"a file starting with {magic!r}"
        raise ExportFormatError(
            f"{name}: expected a gzip-compressed CSV part but got {what}. {_WHAT_TO_DO}",
            file=name,
        )

    header = read_header(path)
    check = check_header(header)
    if check.duplicated or check.missing_required:
        # A stream damaged near its start decompresses to a garbled header, which would read as
        # a format change; the whole-stream check names the real cause (a damaged download).
        _verify_gzip(path)
    if check.duplicated:
        raise ExportFormatError(
            f"{name}: column(s) {', '.join(check.duplicated)} appear more than once in the "
            f"header (names are compared case-insensitively), so it is ambiguous which to "
            f"load. {_WHAT_TO_DO}",
            file=name,
            line=1,
        )
    if check.missing_required:
        raise MissingColumnsError(
            f"{name}: missing required column(s) {', '.join(check.missing_required)}; a usage "
            f"export part cannot be loaded without them. Check that this file is a CircleCI "
            f"usage export part (header names are matched case-insensitively). {_WHAT_TO_DO}",
            missing=check.missing_required,
            file=name,
        )

    raw = _blank_numbers_to_null(_read_part(path, header))
    _check_short_rows(path, raw, len(header))
    typed = _reparse_irregular_timestamps(raw, raw.select(clean_column_expressions(raw.schema)))
    _check_conversions(name, raw, typed)
    del raw
    _check_job_ids(name, typed)
    result = typed.with_columns(
        pl.col(snake_case("JOB_RUN_DATE")).alias(USAGE_DATE_COLUMN),
        pl.lit(export_job_id, dtype=pl.String).alias(EXPORT_JOB_ID_COLUMN),
    )
    # The parallel reader leaves many chunks per column; one contiguous chunk is cheap here and
    # makes the caller's copy into DuckDB markedly faster.
    return result.rechunk()
