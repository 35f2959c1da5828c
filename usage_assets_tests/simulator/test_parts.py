"""write_parts: gzip CSV parts like the real export; streamed, atomic, optional schema drift."""

from __future__ import annotations

import csv
import gzip
import math
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES, NULL_MARKER
from usage_assets.simulator.parts import SchemaDrift, write_parts
from usage_assets.simulator.synthetic import SyntheticUsage

ORG = "8d05d166-e199-43b1-b588-415eadafacc1"
HEADER = ",".join(EXPORT_COLUMN_NAMES)


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, ...]]:
    usage = SyntheticUsage(rows_per_day=120)
    out = [r for i in range(5) for r in usage.rows_for_day(ORG, date(2025, 3, 3) + timedelta(i))]
    assert len(out) > 300
    return out


def read_part(path: Path) -> list[str]:
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    text = gzip.decompress(raw).decode("utf-8")
    assert "\r" not in text
    assert text.endswith("\n")
    return text[:-1].split("\n")


@pytest.mark.parametrize(
    ("n_rows", "rows_per_part"),
    [(1, 10), (10, 10), (11, 10), (250, 7), (300, 1000)],
)
def test_parts_split_rows_and_repeat_the_header(
    tmp_path: Path, rows: list[tuple[str, ...]], n_rows: int, rows_per_part: int
) -> None:
    chosen = rows[:n_rows]
    paths = write_parts(iter(chosen), tmp_path, rows_per_part=rows_per_part)
    assert len(paths) == math.ceil(n_rows / rows_per_part)
    assert [p.name for p in paths] == [f"usage_{i:04d}.csv.gz" for i in range(len(paths))]
    assert sorted(tmp_path.iterdir()) == sorted(paths)  # no temporary files left behind
    seen: list[str] = []
    for i, path in enumerate(paths):
        lines = read_part(path)
        assert lines[0] == HEADER
        body = lines[1:]
        assert 1 <= len(body) <= rows_per_part
        if i < len(paths) - 1:
            assert len(body) == rows_per_part
        seen.extend(body)
    assert seen == [",".join(r) for r in chosen]


def test_parts_parse_back_with_a_csv_reader(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    paths = write_parts(rows, tmp_path, rows_per_part=100)
    parsed: list[tuple[str, ...]] = []
    for path in paths:
        with gzip.open(path, "rt", newline="") as fh:
            reader = csv.reader(fh)
            assert tuple(next(reader)) == EXPORT_COLUMN_NAMES
            parsed.extend(tuple(r) for r in reader)
    assert parsed == rows
    assert any(NULL_MARKER in r for r in parsed)


def test_gzip_header_has_no_file_name_and_output_is_reproducible(
    tmp_path: Path, rows: list[tuple[str, ...]]
) -> None:
    first = write_parts(rows, tmp_path / "a", rows_per_part=200)
    second = write_parts(rows, tmp_path / "b", rows_per_part=200)
    for a, b in zip(first, second, strict=True):
        data = a.read_bytes()
        assert data[:4] == b"\x1f\x8b\x08\x00"  # deflate, FLG = 0 like the real files
        assert data == b.read_bytes()


def test_zero_rows_write_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    assert write_parts(iter(()), dest, rows_per_part=10) == []
    assert not dest.exists() or list(dest.iterdir()) == []


def test_name_prefix_and_missing_dest_dir(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    dest = tmp_path / "nested" / "job-1"
    paths = write_parts(rows[:3], dest, rows_per_part=2, name_prefix="export")
    assert [p.name for p in paths] == ["export_0000.csv.gz", "export_0001.csv.gz"]
    assert all(p.parent == dest for p in paths)


def test_rows_are_streamed_not_collected(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    consumed = 0
    parts_seen_while_streaming: list[int] = []

    def stream() -> Iterator[tuple[str, ...]]:
        nonlocal consumed
        for row in rows[:95]:
            consumed += 1
            if consumed % 10 == 1:
                parts_seen_while_streaming.append(len(list(tmp_path.glob("usage_*.csv.gz"))))
            yield row

    paths = write_parts(stream(), tmp_path, rows_per_part=10)
    assert len(paths) == 10
    # Finished parts appear while later rows are still being produced.
    assert parts_seen_while_streaming == list(range(10))


def test_a_failure_mid_part_leaves_only_complete_parts(
    tmp_path: Path, rows: list[tuple[str, ...]]
) -> None:
    def broken() -> Iterator[tuple[str, ...]]:
        yield from rows[:25]
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        write_parts(broken(), tmp_path, rows_per_part=10)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["usage_0000.csv.gz", "usage_0001.csv.gz"]
    for name in names:
        assert len(read_part(tmp_path / name)) == 11


@pytest.mark.parametrize(
    "bad_value", ["has,comma", 'has"quote', "has\nnewline", "has\rreturn"], ids=repr
)
def test_values_that_would_need_quoting_are_refused(
    tmp_path: Path, rows: list[tuple[str, ...]], bad_value: str
) -> None:
    bad = (*rows[0][:4], bad_value, *rows[0][5:])
    with pytest.raises(ValueError):
        write_parts([rows[1], bad], tmp_path, rows_per_part=10)
    assert list(tmp_path.iterdir()) == []


def test_rows_of_the_wrong_width_are_refused(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    with pytest.raises(ValueError):
        write_parts([rows[0][:-1]], tmp_path, rows_per_part=10)
    with pytest.raises(ValueError):
        write_parts(rows, tmp_path, rows_per_part=0)


# ---------------------------------------------------------------- schema drift


def parse(paths: list[Path]) -> tuple[list[str], list[dict[str, str]]]:
    headers: list[list[str]] = []
    records: list[dict[str, str]] = []
    for path in paths:
        lines = read_part(path)
        header = lines[0].split(",")
        headers.append(header)
        for line in lines[1:]:
            values = line.split(",")
            assert len(values) == len(header)
            records.append(dict(zip(header, values, strict=True)))
    assert all(h == headers[0] for h in headers)
    return headers[0], records


@pytest.mark.parametrize(
    "drift",
    [
        SchemaDrift(extra_columns=("IS_DEFAULT_BRANCH",)),
        SchemaDrift(missing_columns=("JOB_RUN_QUEUED_AT", "JOB_RUN_STOPPED_AT")),
        SchemaDrift(extra_columns=("NEW_A", "NEW_B"), missing_columns=("TOTAL_CREDITS",)),
    ],
    ids=["extra", "missing", "both"],
)
def test_schema_drift(tmp_path: Path, rows: list[tuple[str, ...]], drift: SchemaDrift) -> None:
    paths = write_parts(rows[:120], tmp_path, rows_per_part=50, drift=drift)
    assert len(paths) == 3
    header, records = parse(paths)
    expected = [c for c in EXPORT_COLUMN_NAMES if c not in drift.missing_columns]
    assert header == expected + list(drift.extra_columns)
    assert len(records) == 120
    for record, row in zip(records, rows, strict=False):
        for column in drift.extra_columns:
            assert record[column] == "x"
        for column in drift.missing_columns:
            assert column not in record
        original = dict(zip(EXPORT_COLUMN_NAMES, row, strict=True))
        assert {k: v for k, v in record.items() if k in original} == {
            k: v for k, v in original.items() if k not in drift.missing_columns
        }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"missing_columns": ("NOT_A_COLUMN",)},
        {"extra_columns": ("JOB_ID",)},
        {"extra_columns": ("A,B",)},
    ],
)
def test_bad_drift_is_rejected(kwargs: dict[str, tuple[str, ...]]) -> None:
    with pytest.raises(ValueError):
        SchemaDrift(**kwargs)


# ---------------------------------------------------------------- speed sanity


def test_speed_sanity(tmp_path: Path) -> None:
    """Generates and writes ~10k rows; prints the rate (no timing assertion, machines differ)."""
    usage = SyntheticUsage(rows_per_day=5000)
    n = usage.day_row_count(ORG, date(2025, 3, 4)) + usage.day_row_count(ORG, date(2025, 3, 5))
    rows_iter = (
        r for d in (date(2025, 3, 4), date(2025, 3, 5)) for r in usage.rows_for_day(ORG, d)
    )
    started = time.perf_counter()
    paths = write_parts(rows_iter, tmp_path, rows_per_part=5000)
    elapsed = time.perf_counter() - started
    assert len(paths) == math.ceil(n / 5000)
    total = sum(len(read_part(p)) - 1 for p in paths)
    assert total == n
    raw = sum(len(gzip.decompress(p.read_bytes())) for p in paths)
    packed = sum(p.stat().st_size for p in paths)
    print(
        f"\n{n} rows generated+written in {elapsed:.2f}s = {n / elapsed:,.0f} rows/s; "
        f"compression {raw / packed:.1f}:1"
    )
    assert raw / packed > 3


def test_the_2026_dialect_quotes_every_field_and_writes_nulls_empty(
    tmp_path: Path, rows: list[tuple[str, ...]]
) -> None:
    """circleci-data-facts.md §4: a 2026 header is `"PROJECT_ID","PROJECT_NAME",...` and a
    missing utilisation is `""`."""
    [path] = write_parts(rows[:50], tmp_path, rows_per_part=100, dialect="2026")
    lines = read_part(path)
    assert lines[0] == '"' + '","'.join(EXPORT_COLUMN_NAMES) + '"'
    assert all(line.startswith('"') and line.endswith('"') for line in lines)
    assert NULL_MARKER not in "\n".join(lines)
    parsed = list(csv.reader(lines[1:]))
    expected = [["" if v == NULL_MARKER else v for v in row] for row in rows[:50]]
    assert parsed == expected
    assert any("" in row for row in parsed)


def test_the_2026_dialect_with_schema_drift(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    drift = SchemaDrift(extra_columns=("NEW_COL",), missing_columns=("VCS_URL",))
    [path] = write_parts(rows[:5], tmp_path, rows_per_part=10, drift=drift, dialect="2026")
    header, *body = list(csv.reader(read_part(path)))
    assert header[-1] == "NEW_COL" and "VCS_URL" not in header
    assert all(len(row) == len(header) and row[-1] == "x" for row in body)


def test_an_unknown_dialect_is_refused(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    with pytest.raises(ValueError, match="dialect"):
        write_parts(rows[:5], tmp_path, rows_per_part=10, dialect="2025")
    assert list(tmp_path.iterdir()) == []
