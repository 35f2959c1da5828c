"""Tests for usage_assets.ingest.cleaning: header checks and the cleaning of one export part.

The fixture `fixtures/real_rows.csv` is the real header and 3 real rows of a public export
(CircleCI-Public/multi_org_usage_report, see fixtures/README.md), verbatim, `\\N` nulls included. Tests
gzip it (or a variant of it) into tmp_path, so no binary is committed.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pytest

from usage_assets.circleci.export_format import (
    CREDIT_COMPONENT_COLUMNS,
    EXPORT_COLUMN_NAMES,
    NULL_MARKER,
)
from usage_assets.ingest import cleaning
from usage_assets.ingest.cleaning import (
    CLEAN_SCHEMA,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    DamagedPartError,
    ExportFormatError,
    HeaderCheck,
    MissingColumnsError,
    check_header,
    clean_part,
    read_header,
    snake_case,
)

Quoting = Literal[0, 1, 2, 3]  # the csv.QUOTE_* values typeshed accepts on 3.11

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "real_rows.csv"
EXPORT_JOB_ID = "e8235eed-f121-4ae3-9c72-2719d6572818"
REAL_TEXT = FIXTURE.read_text(encoding="utf-8")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def real_table() -> tuple[list[str], list[list[str]]]:
    """Header and rows of the real fixture, as lists of strings."""
    header, *rows = csv.reader(io.StringIO(REAL_TEXT))
    return header, rows


def to_csv(
    header: list[str], rows: list[list[str]], *, quoting: Quoting = csv.QUOTE_MINIMAL
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_gz(directory: Path, content: str | bytes, name: str = "part_0.csv.gz") -> Path:
    path = directory / name
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data))
    return path


def modified(transform: Callable[[dict[str, str]], None]) -> str:
    """The real fixture with `transform` applied to every row (as a dict by column name)."""
    header, rows = real_table()
    new_rows = []
    for row in rows:
        record = dict(zip(header, row, strict=True))
        transform(record)
        new_rows.append([record[h] for h in header])
    return to_csv(header, new_rows)


def with_columns(
    columns: list[str],
    rename: Callable[[str], str] = lambda c: c,
    extra: dict[str, str] | None = None,
) -> str:
    """The real fixture restricted/reordered to `columns`, headers passed through `rename`."""
    header, rows = real_table()
    index = {name: i for i, name in enumerate(header)}
    extra = extra or {}
    out_header = [rename(c) for c in columns] + list(extra)
    out_rows = [[row[index[c]] for c in columns] + list(extra.values()) for row in rows]
    return to_csv(out_header, out_rows)


@pytest.fixture
def real_part(tmp_path: Path) -> Path:
    return write_gz(tmp_path, REAL_TEXT)


@pytest.fixture
def real_frame(real_part: Path) -> pl.DataFrame:
    return clean_part(real_part, export_job_id=EXPORT_JOB_ID)


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("JOB_RUN_SECONDS", "job_run_seconds"),
        ("ORGANIZATION_ID", "organization_id"),
        ("job_run_seconds", "job_run_seconds"),
        ("  TOTAL_CREDITS \n", "total_credits"),
        ("Job Run-Seconds", "job_run_seconds"),
        ("IPRANGES_CREDITS", "ipranges_credits"),
        ("MEDIAN_CPU_UTILIZATION_PCT", "median_cpu_utilization_pct"),
    ],
)
def test_snake_case(column: str, expected: str) -> None:
    assert snake_case(column) == expected


def test_required_columns_are_the_documented_identity_date_status_and_credit_columns() -> None:
    assert (
        frozenset(
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
                "TOTAL_CREDITS",
            }
        )
        == REQUIRED_COLUMNS
    )
    assert len(REQUIRED_COLUMNS) == 17
    assert set(OPTIONAL_COLUMNS) | REQUIRED_COLUMNS == set(EXPORT_COLUMN_NAMES)
    assert not set(OPTIONAL_COLUMNS) & REQUIRED_COLUMNS


def test_clean_schema_is_the_48_columns_in_order_then_usage_date_and_export_job_id() -> None:
    names = list(CLEAN_SCHEMA)
    assert names[:48] == [c.lower() for c in EXPORT_COLUMN_NAMES]
    assert names[48:] == ["usage_date", "export_job_id"]
    assert CLEAN_SCHEMA["organization_id"] == pl.String
    assert CLEAN_SCHEMA["job_run_date"] == pl.Date
    assert CLEAN_SCHEMA["usage_date"] == pl.Date
    assert CLEAN_SCHEMA["pipeline_created_at"] == pl.Datetime("ms", time_zone="UTC")
    assert CLEAN_SCHEMA["is_workflow_successful"] == pl.Boolean
    assert CLEAN_SCHEMA["pipeline_number"] == pl.Int64
    assert CLEAN_SCHEMA["total_credits"] == pl.Float64
    assert CLEAN_SCHEMA["job_run_seconds"] == pl.Float64


REAL_HEADER = list(EXPORT_COLUMN_NAMES)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(REAL_HEADER, HeaderCheck((), (), ()), id="complete"),
        pytest.param(
            [c for c in REAL_HEADER if c not in ("JOB_ID", "TOTAL_CREDITS")],
            HeaderCheck(("JOB_ID", "TOTAL_CREDITS"), (), ()),
            id="missing-required",
        ),
        pytest.param(
            [c for c in REAL_HEADER if not c.startswith("JOB_RUN_") or c == "JOB_RUN_DATE"],
            HeaderCheck(
                (),
                (
                    "JOB_RUN_NUMBER",
                    "JOB_RUN_QUEUED_AT",
                    "JOB_RUN_STARTED_AT",
                    "JOB_RUN_STOPPED_AT",
                    "JOB_RUN_SECONDS",
                ),
                (),
            ),
            id="missing-optional",
        ),
        pytest.param(
            [*REAL_HEADER, "IS_DEFAULT_BRANCH", "SOMETHING_NEW"],
            HeaderCheck((), (), ("IS_DEFAULT_BRANCH", "SOMETHING_NEW")),
            id="unknown-extra",
        ),
        pytest.param([c.lower() for c in REAL_HEADER], HeaderCheck((), (), ()), id="lower-case"),
        pytest.param(
            [f" {c.title()} " for c in REAL_HEADER], HeaderCheck((), (), ()), id="mixed-case-padded"
        ),
        pytest.param(list(reversed(REAL_HEADER)), HeaderCheck((), (), ()), id="reordered"),
        pytest.param(
            [*REAL_HEADER, "job_id"], HeaderCheck((), (), (), ("JOB_ID",)), id="duplicated"
        ),
        pytest.param(
            [],
            HeaderCheck(
                tuple(c for c in EXPORT_COLUMN_NAMES if c in REQUIRED_COLUMNS),
                OPTIONAL_COLUMNS,
                (),
            ),
            id="empty",
        ),
    ],
)
def test_check_header(header: list[str], expected: HeaderCheck) -> None:
    assert check_header(header) == expected


@pytest.mark.parametrize(
    ("check", "loadable"),
    [
        (HeaderCheck((), ("VCS_URL",), ("NEW",)), True),
        (HeaderCheck(("JOB_ID",), (), ()), False),
        (HeaderCheck((), (), (), ("JOB_ID",)), False),
    ],
)
def test_header_check_loadable(check: HeaderCheck, loadable: bool) -> None:
    assert check.loadable is loadable


# --------------------------------------------------------------------------- read_header


def test_read_header_of_real_part(real_part: Path) -> None:
    assert read_header(real_part) == REAL_HEADER


def test_read_header_normalises_case_quotes_bom_and_crlf(tmp_path: Path) -> None:
    path = write_gz(tmp_path, '\ufeff"job_id", Total_Credits ,"A,B"\r\n1,2,3\r\n')
    assert read_header(path) == ["JOB_ID", "TOTAL_CREDITS", "A,B"]


def test_read_header_reads_only_the_first_line(tmp_path: Path) -> None:
    # Everything after the header is damaged: read_header must not get that far.
    body = ("x" * 50 + "\n") * 20_000
    compressed = gzip.compress(f"{','.join(REAL_HEADER)}\n{body}".encode())
    path = tmp_path / "damaged_tail.csv.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    assert read_header(path) == REAL_HEADER
    with pytest.raises(ExportFormatError):
        clean_part(path, export_job_id=EXPORT_JOB_ID)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"ORGANIZATION_ID,JOB_ID\n", id="plain-csv"),
        pytest.param(b"", id="empty-file"),
        pytest.param(gzip.compress(b""), id="empty-gzip"),
    ],
)
def test_read_header_rejects_unusable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(content)
    with pytest.raises(ExportFormatError, match=r"bad\.csv\.gz"):
        read_header(path)


# --------------------------------------------------------------------------- clean_part: real rows


def test_real_rows_have_exactly_the_clean_schema(real_frame: pl.DataFrame) -> None:
    assert real_frame.schema == pl.Schema(CLEAN_SCHEMA)
    assert real_frame.height == 3


def test_real_rows_first_row_exact_values(real_frame: pl.DataFrame) -> None:
    assert real_frame.row(0, named=True) == {
        "organization_id": "8d05d166-e199-43b1-b588-415eadafacc1",
        "organization_name": "determined-ai",
        "organization_created_date": date(2020, 4, 3),
        "project_id": "64b687d6-a9c7-4d25-b641-d153181e2777",
        "project_name": "determined",
        "project_created_date": date(2020, 4, 3),
        "last_build_finished_at": utc(2025, 3, 5, 22, 3, 51, 577_000),
        "vcs_name": "github",
        "vcs_url": "https://github.com/determined-ai/determined",
        "vcs_branch": "main",
        "pipeline_id": "729498ed-a352-44a5-a04f-2121277a6aff",
        "pipeline_created_at": utc(2024, 11, 10, 5, 10, 15, 761_000),
        "pipeline_number": 62743,
        "is_unregistered_user": True,
        "pipeline_trigger_source": "scheduled_pipeline",
        "pipeline_trigger_user_id": None,
        "workflow_id": "b3fab395-6985-4c71-b7a9-671f6e986513",
        "workflow_name": "test-cli",
        "workflow_first_job_queued_at": utc(2024, 11, 10, 5, 10, 52),
        "workflow_first_job_started_at": utc(2024, 11, 10, 5, 10, 53),
        "workflow_stopped_at": utc(2024, 11, 10, 5, 17, 30),
        "is_workflow_successful": True,
        "job_name": "test-cli-win/default",
        "job_run_number": 3095267,
        "job_id": "6d74c1b1-65d0-4c89-94f2-313633600696",
        "job_run_date": date(2024, 11, 10),
        "job_run_queued_at": utc(2024, 11, 10, 5, 10, 52),
        "job_run_started_at": utc(2024, 11, 10, 5, 11, 19),
        "job_run_stopped_at": utc(2024, 11, 10, 5, 17, 30),
        "job_build_status": "success",
        "resource_class": "windows.medium",
        "operating_system": "windows",
        "executor": "machine",
        "parallelism": 1,
        "job_run_seconds": 371.0,
        "median_cpu_utilization_pct": 56.0,
        "max_cpu_utilization_pct": 98.0,
        "median_ram_utilization_pct": 23.0,
        "max_ram_utilization_pct": 26.0,
        "compute_credits": 247.0,
        "dlc_credits": 0.0,
        "user_credits": 0.0,
        "storage_credits": 0.0,
        "network_credits": 0.0,
        "lease_credits": 0.0,
        "lease_overage_credits": 0.0,
        "ipranges_credits": 0.0,
        "total_credits": 247.0,
        "usage_date": date(2024, 11, 10),
        "export_job_id": EXPORT_JOB_ID,
    }


def test_real_rows_second_and_third_rows(real_frame: pl.DataFrame) -> None:
    second = real_frame.row(1, named=True)
    assert second["vcs_branch"] == (
        "dependabot/npm_and_yarn/frontend/eslint-plugin-testing-library-6.4.0"
    )
    assert second["pipeline_trigger_source"] == "webhook"
    assert (second["compute_credits"], second["storage_credits"], second["total_credits"]) == (
        122.0,
        24.0,
        146.0,
    )

    # The canceled job that never ran: job-level attributes are null, credits are 0.
    third = real_frame.row(2, named=True)
    assert third["job_build_status"] == "canceled"
    assert third["is_workflow_successful"] is False
    assert third["workflow_first_job_started_at"] == utc(2024, 11, 12, 11, 10, 53, 760_000)
    assert third["job_run_started_at"] == utc(2024, 11, 12, 11, 10, 53, 760_000)
    for column in (
        "job_name",
        "job_run_number",
        "job_run_queued_at",
        "job_run_stopped_at",
        "resource_class",
        "operating_system",
        "executor",
        "parallelism",
        "job_run_seconds",
        "median_cpu_utilization_pct",
        "max_ram_utilization_pct",
    ):
        assert third[column] is None, column
    assert third["total_credits"] == 0.0
    assert third["usage_date"] == date(2024, 11, 12)


def test_real_rows_columnwise_facts(real_frame: pl.DataFrame) -> None:
    assert real_frame["usage_date"].to_list() == real_frame["job_run_date"].to_list()
    assert real_frame["export_job_id"].to_list() == [EXPORT_JOB_ID] * 3
    assert real_frame["pipeline_trigger_user_id"].null_count() == 3
    assert real_frame["job_id"].to_list() == [
        "6d74c1b1-65d0-4c89-94f2-313633600696",
        "82677041-582b-448a-9052-cb5c7939acd0",
        "be8f87c2-5c71-4e45-9883-b9d624a97045",
    ]
    # TOTAL_CREDITS is the sum of the components in the real data.
    components = real_frame.select(pl.sum_horizontal([c.lower() for c in CREDIT_COMPONENT_COLUMNS]))
    assert components.to_series().to_list() == real_frame["total_credits"].to_list()


# --------------------------------------------------------------------------- clean_part: variants


@pytest.mark.parametrize("spelling", ["\\N", ""], ids=["single-backslash", "empty"])
def test_other_null_spellings_load_like_the_real_marker(
    tmp_path: Path, real_frame: pl.DataFrame, spelling: str
) -> None:
    assert NULL_MARKER in REAL_TEXT
    path = write_gz(tmp_path, REAL_TEXT.replace(NULL_MARKER, spelling))
    assert clean_part(path, export_job_id=EXPORT_JOB_ID).equals(real_frame)


def test_fully_quoted_file_loads_like_the_unquoted_one(
    tmp_path: Path, real_frame: pl.DataFrame
) -> None:
    header, rows = real_table()
    path = write_gz(tmp_path, to_csv(header, rows, quoting=csv.QUOTE_ALL))
    assert clean_part(path, export_job_id=EXPORT_JOB_ID).equals(real_frame)


def test_quoted_values_may_hold_commas_quotes_and_newlines(tmp_path: Path) -> None:
    def tweak(row: dict[str, str]) -> None:
        row["WORKFLOW_NAME"] = 'build, "test"\nand deploy'
        row["VCS_BRANCH"] = "feature/a,b"

    frame = clean_part(write_gz(tmp_path, modified(tweak)), export_job_id=EXPORT_JOB_ID)
    assert frame.height == 3
    assert frame["workflow_name"].to_list() == ['build, "test"\nand deploy'] * 3
    assert frame["vcs_branch"].to_list() == ["feature/a,b"] * 3
    assert frame["total_credits"].to_list() == [247.0, 146.0, 0.0]


def test_lower_case_reordered_header_loads_like_the_real_one(
    tmp_path: Path, real_frame: pl.DataFrame
) -> None:
    content = with_columns(list(reversed(REAL_HEADER)), rename=str.lower)
    assert clean_part(write_gz(tmp_path, content), export_job_id=EXPORT_JOB_ID).equals(real_frame)


def test_unknown_extra_columns_are_dropped(tmp_path: Path, real_frame: pl.DataFrame) -> None:
    content = with_columns(REAL_HEADER, extra={"IS_DEFAULT_BRANCH": "true", "NEW_THING": "x"})
    path = write_gz(tmp_path, content)
    assert check_header(read_header(path)).unknown == ("IS_DEFAULT_BRANCH", "NEW_THING")
    assert clean_part(path, export_job_id=EXPORT_JOB_ID).equals(real_frame)


def test_missing_optional_columns_become_typed_null_columns(
    tmp_path: Path, real_frame: pl.DataFrame
) -> None:
    dropped = ["JOB_RUN_QUEUED_AT", "IS_UNREGISTERED_USER", "PARALLELISM", "VCS_URL"]
    path = write_gz(tmp_path, with_columns([c for c in REAL_HEADER if c not in dropped]))
    assert check_header(read_header(path)).missing_optional == (
        "VCS_URL",
        "IS_UNREGISTERED_USER",
        "JOB_RUN_QUEUED_AT",
        "PARALLELISM",
    )
    frame = clean_part(path, export_job_id=EXPORT_JOB_ID)
    assert frame.schema == pl.Schema(CLEAN_SCHEMA)
    for column in dropped:
        assert frame[column.lower()].null_count() == 3, column
    kept = [c for c in CLEAN_SCHEMA if c.upper() not in dropped]
    assert frame.select(kept).equals(real_frame.select(kept))


def test_missing_required_columns_raise_listing_them(tmp_path: Path) -> None:
    gone = ["JOB_ID", "TOTAL_CREDITS", "DLC_CREDITS"]
    path = write_gz(tmp_path, with_columns([c for c in REAL_HEADER if c not in gone]))
    with pytest.raises(MissingColumnsError) as caught:
        clean_part(path, export_job_id=EXPORT_JOB_ID)
    error = caught.value
    assert isinstance(error, ExportFormatError)
    assert error.missing == ("JOB_ID", "DLC_CREDITS", "TOTAL_CREDITS")
    assert error.file == "part_0.csv.gz"
    for text in ("part_0.csv.gz", "JOB_ID", "DLC_CREDITS", "TOTAL_CREDITS"):
        assert text in str(error)
    assert str(tmp_path) not in str(error)  # basename only


def test_duplicate_columns_are_refused(tmp_path: Path) -> None:
    header, rows = real_table()
    content = to_csv([*header, "job_id"], [[*row, "other"] for row in rows])
    with pytest.raises(ExportFormatError, match="JOB_ID"):
        clean_part(write_gz(tmp_path, content), export_job_id=EXPORT_JOB_ID)


def test_numbers_need_not_be_integers_and_booleans_ignore_case(tmp_path: Path) -> None:
    def tweak(row: dict[str, str]) -> None:
        row["COMPUTE_CREDITS"] = "12.5"
        row["TOTAL_CREDITS"] = "1e2"
        row["IS_WORKFLOW_SUCCESSFUL"] = "TRUE"
        row["IS_UNREGISTERED_USER"] = "False"
        row["PIPELINE_CREATED_AT"] = "2024-11-10 05:10:15"  # whole seconds, no fraction

    frame = clean_part(write_gz(tmp_path, modified(tweak)), export_job_id=EXPORT_JOB_ID)
    assert frame["compute_credits"].to_list() == [12.5] * 3
    assert frame["total_credits"].to_list() == [100.0] * 3
    assert frame["is_workflow_successful"].to_list() == [True] * 3
    assert frame["is_unregistered_user"].to_list() == [False] * 3
    assert frame["pipeline_created_at"].to_list() == [utc(2024, 11, 10, 5, 10, 15)] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-10 05:10:15.761", utc(2024, 11, 10, 5, 10, 15, 761_000)),
        ("2024-11-10 05:10:15", utc(2024, 11, 10, 5, 10, 15)),
        ("2024-11-10 05:10:15.5", utc(2024, 11, 10, 5, 10, 15, 500_000)),
        ("2024-11-10 05:10:15.761999", utc(2024, 11, 10, 5, 10, 15, 761_000)),
    ],
    ids=["milliseconds", "whole-seconds", "tenths", "microseconds-truncated"],
)
def test_any_fraction_loads_beside_millisecond_rows(
    tmp_path: Path, text: str, expected: datetime
) -> None:
    # Only the second row deviates, so the column goes through the fast millisecond parse first.
    header, rows = real_table()
    column = header.index("JOB_RUN_STOPPED_AT")
    rows[1][column] = text
    frame = clean_part(write_gz(tmp_path, to_csv(header, rows)), export_job_id=EXPORT_JOB_ID)
    assert frame["job_run_stopped_at"][1] == expected
    assert frame["job_run_stopped_at"][0] == utc(2024, 11, 10, 5, 17, 30)


def test_a_bad_timestamp_is_named_after_an_irregular_one(tmp_path: Path) -> None:
    header, rows = real_table()
    column = header.index("JOB_RUN_STOPPED_AT")
    rows[0][column] = "2024-11-10 05:17:30"
    rows[2][column] = "2024-11-10 25:17:30.000"
    path = write_gz(tmp_path, to_csv(header, rows))
    with pytest.raises(ExportFormatError) as caught:
        clean_part(path, export_job_id=EXPORT_JOB_ID)
    assert (caught.value.column, caught.value.value, caught.value.line) == (
        "JOB_RUN_STOPPED_AT",
        "2024-11-10 25:17:30.000",
        4,
    )


# Values at the edges of what a number or boolean is. polars' reader parses these columns while
# reading; the String road (used when the reader rejects anything in a part) must reach the same
# verdict, or whether a file loads would hinge on unrelated rows.
EDGE_VALUES = {
    "PIPELINE_NUMBER": [
        "5", "+5", "-5", "007", " 5", "\t5", "5 ", " ", "\t", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "5.0", "1e3", "0x10", "1_000", "abc",
    ],
    "TOTAL_CREDITS": [
        "5", "1e2", ".5", "5.", "-0", "1.5e-400", " 5", "\t5", "5 ", " ", "1e400", "nan",
        "-nan", "+inf", "Infinity", "1..5", "1e", "1_0", "abc",
    ],
    "IS_WORKFLOW_SUCCESSFUL": ["true", "False", "TRUE", " true", "\ttrue", "1", "t", "yes", " "],
}  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value"), [(c, v) for c, values in EDGE_VALUES.items() for v in values]
)
def test_both_reads_agree_on_every_edge_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str, value: str
) -> None:
    header, rows = real_table()
    rows[1][header.index(column)] = value
    path = write_gz(tmp_path, to_csv(header, rows))

    def outcome() -> object:
        try:
            return clean_part(path, export_job_id=EXPORT_JOB_ID)[snake_case(column)].to_list()
        except ExportFormatError as error:
            return (error.column, error.value, error.line)

    parsed_while_reading = outcome()
    monkeypatch.setattr(cleaning, "_READER_PARSED_KINDS", frozenset())
    assert outcome() == parsed_while_reading


def test_timestamps_are_read_as_utc_not_shifted(real_frame: pl.DataFrame) -> None:
    column = real_frame["pipeline_created_at"]
    assert column.dtype == pl.Datetime("ms", time_zone="UTC")
    epoch_ms = column.dt.epoch("ms").to_list()[0]
    assert epoch_ms == int(utc(2024, 11, 10, 5, 10, 15, 761_000).timestamp() * 1000)


@pytest.mark.parametrize(
    ("column", "bad_value"),
    [
        ("COMPUTE_CREDITS", "abc"),
        ("TOTAL_CREDITS", "12 credits"),
        ("LEASE_CREDITS", "NaN"),
        ("USER_CREDITS", "inf"),
        ("PIPELINE_NUMBER", "1.5"),
        ("JOB_RUN_DATE", "2024-13-01"),
        ("JOB_RUN_STARTED_AT", "yesterday"),
        ("IS_WORKFLOW_SUCCESSFUL", "yes"),
    ],
)
def test_bad_value_raises_naming_file_column_value_and_line(
    tmp_path: Path, column: str, bad_value: str
) -> None:
    header, rows = real_table()
    rows[1][header.index(column)] = bad_value  # second data row = line 3
    path = write_gz(tmp_path, to_csv(header, rows), name="usage_part_7.csv.gz")
    with pytest.raises(ExportFormatError) as caught:
        clean_part(path, export_job_id=EXPORT_JOB_ID)
    error = caught.value
    assert not isinstance(error, MissingColumnsError)
    assert (error.file, error.column, error.value, error.line) == (
        "usage_part_7.csv.gz",
        column,
        bad_value,
        3,
    )
    message = str(error)
    for text in ("usage_part_7.csv.gz", column, repr(bad_value), "line 3", "Re-download"):
        assert text in message
    assert str(tmp_path) not in message


def test_only_the_first_bad_value_is_shown_with_a_count(tmp_path: Path) -> None:
    def tweak(row: dict[str, str]) -> None:
        row["NETWORK_CREDITS"] = "n/a"

    with pytest.raises(ExportFormatError, match=r"line 2 has 'n/a' \(3 bad value"):
        clean_part(write_gz(tmp_path, modified(tweak)), export_job_id=EXPORT_JOB_ID)


# --------------------------------------------------------------------------- ragged rows


def _lines() -> list[str]:
    return REAL_TEXT.splitlines()


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def test_short_row_raises_with_line(tmp_path: Path) -> None:
    lines = _lines()
    lines[2] = lines[2].rsplit(",", 1)[0]  # drop the last field (TOTAL_CREDITS) of line 3
    with pytest.raises(ExportFormatError, match=r"part_0\.csv\.gz.*line 3 has 47 field") as caught:
        clean_part(write_gz(tmp_path, _join(lines)), export_job_id=EXPORT_JOB_ID)
    assert caught.value.line == 3


def test_long_row_raises_with_line(tmp_path: Path) -> None:
    lines = _lines()
    lines[3] += ",surplus"
    with pytest.raises(ExportFormatError, match=r"part_0\.csv\.gz.*line 4 has 49 field"):
        clean_part(write_gz(tmp_path, _join(lines)), export_job_id=EXPORT_JOB_ID)


def test_blank_line_raises(tmp_path: Path) -> None:
    lines = _lines()
    lines.insert(2, "")
    with pytest.raises(ExportFormatError, match=r"line 3 has 0 field\(s\) \(a blank line\)"):
        clean_part(write_gz(tmp_path, _join(lines)), export_job_id=EXPORT_JOB_ID)


@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL], ids=["plain", "quoted"])
def test_short_row_is_caught_when_the_last_column_legitimately_holds_nulls(
    tmp_path: Path, quoting: Quoting
) -> None:
    # Put JOB_NAME (null in the canceled row) last, then drop that last field on the first row:
    # polars would pad it with a null that looks just like the real one.
    columns = [c for c in REAL_HEADER if c != "JOB_NAME"] + ["JOB_NAME"]
    header, rows = real_table()
    index = {name: i for i, name in enumerate(header)}
    table = [[row[index[c]] for c in columns] for row in rows]
    text = to_csv(columns, table, quoting=quoting)
    lines = text.splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0]
    with pytest.raises(ExportFormatError, match=r"line 2 has 47 field"):
        clean_part(write_gz(tmp_path, _join(lines)), export_job_id=EXPORT_JOB_ID)


@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL], ids=["plain", "quoted"])
def test_null_in_last_column_is_not_mistaken_for_a_short_row(
    tmp_path: Path, real_frame: pl.DataFrame, quoting: Quoting
) -> None:
    columns = [c for c in REAL_HEADER if c != "JOB_NAME"] + ["JOB_NAME"]
    header, rows = real_table()
    index = {name: i for i, name in enumerate(header)}
    table = [[row[index[c]] for c in columns] for row in rows]
    table[0][-1] = ""  # an empty (null) last value, written as a trailing comma
    path = write_gz(tmp_path, to_csv(columns, table, quoting=quoting))
    frame = clean_part(path, export_job_id=EXPORT_JOB_ID)
    assert frame["job_name"].to_list() == [None, "aioli-build", None]
    others = [c for c in CLEAN_SCHEMA if c != "job_name"]
    assert frame.select(others).equals(real_frame.select(others))


@pytest.mark.parametrize("chunk_bytes", [7, 1 << 20])
@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL], ids=["plain", "quoted"])
@pytest.mark.parametrize("ragged", [False, True], ids=["valid", "short-row"])
def test_short_row_check_with_tricky_values_and_any_streaming_chunk_size(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk_bytes: int,
    quoting: Quoting,
    ragged: bool,
) -> None:
    # JOB_NAME (null in the canceled row) last forces the byte-level check; quoted values with
    # separators, escaped quotes and newlines must not be counted as fields.
    monkeypatch.setattr(cleaning, "_STREAM_CHUNK_BYTES", chunk_bytes)
    columns = [c for c in REAL_HEADER if c != "JOB_NAME"] + ["JOB_NAME"]
    header, rows = real_table()
    index = {name: i for i, name in enumerate(header)}
    table = [[row[index[c]] for c in columns] for row in rows]
    if quoting == csv.QUOTE_ALL:
        for row in table:
            row[columns.index("WORKFLOW_NAME")] = 'a,"b",\nc,,'
    if ragged:
        table[1] = table[1][:-1]  # the second data record loses its last field
    path = write_gz(tmp_path, to_csv(columns, table, quoting=quoting))
    if ragged:
        # Quoted newlines push the third record's first line from 3 to 4.
        line = 4 if quoting == csv.QUOTE_ALL else 3
        with pytest.raises(ExportFormatError, match=f"line {line} has 47 field"):
            clean_part(path, export_job_id=EXPORT_JOB_ID)
    else:
        frame = clean_part(path, export_job_id=EXPORT_JOB_ID)
        assert frame["job_name"].to_list() == ["test-cli-win/default", "aioli-build", None]
        if quoting == csv.QUOTE_ALL:
            assert frame["workflow_name"].to_list() == ['a,"b",\nc,,'] * 3


# --------------------------------------------------------------------------- damaged files


def _big_payload() -> bytes:
    """~1 MB of valid rows, so that damage lands inside the deflate stream."""
    header, rows = real_table()
    many = [[*row] for _ in range(700) for row in rows]
    return to_csv(header, many).encode()


def _flip_middle_byte(gz: bytes) -> bytes:
    middle = len(gz) // 2
    return gz[:middle] + bytes([gz[middle] ^ 0xFF]) + gz[middle + 1 :]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda gz: gz[: len(gz) // 2], id="truncated-half"),
        pytest.param(lambda gz: gz[:-4], id="truncated-trailer"),
        pytest.param(lambda gz: gz[:30], id="truncated-early"),
        pytest.param(_flip_middle_byte, id="corrupt-middle"),
        pytest.param(lambda gz: gz[:-8] + b"\0\0\0\0" + gz[-4:], id="corrupt-crc"),
        pytest.param(lambda gz: gz + b"trailing junk", id="trailing-garbage"),
    ],
)
def test_damaged_gzip_raises_export_format_error(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "part_3.csv.gz"
    path.write_bytes(damage(gzip.compress(_big_payload())))
    with pytest.raises(ExportFormatError, match=r"part_3\.csv\.gz") as caught:
        clean_part(path, export_job_id=EXPORT_JOB_ID)
    assert "gzip" in str(caught.value)


@pytest.mark.parametrize("seed", range(40))
def test_random_gzip_damage_is_always_reported_as_gzip_damage(tmp_path: Path, seed: int) -> None:
    # polars decompresses while parsing, so damage can first look like a CSV error; the user
    # must still be told the download is damaged, and nothing may load.
    rnd = random.Random(seed)
    damaged = bytearray(gzip.compress(_big_payload()))
    kind = ("flip", "zero", "cut")[seed % 3]
    if kind == "flip":
        damaged[rnd.randrange(10, len(damaged))] ^= 1 << rnd.randrange(8)
    elif kind == "zero":
        start = rnd.randrange(10, len(damaged) - 64)
        damaged[start : start + 64] = bytes(64)
    else:
        del damaged[rnd.randrange(10, len(damaged)) :]
    path = tmp_path / "part_5.csv.gz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(DamagedPartError, match=r"part_5\.csv\.gz: damaged, not a valid gzip"):
        clean_part(path, export_job_id=EXPORT_JOB_ID)


@pytest.mark.parametrize("offset", [157, 159, 168, 178, 183, 195])
def test_damage_in_the_header_is_reported_as_damage_not_as_a_format_change(
    tmp_path: Path, offset: int
) -> None:
    """Bytes flipped early in the stream garble the header: without the whole-stream check that
    read as missing or repeated columns, i.e. "CircleCI changed the format"."""
    damaged = bytearray(gzip.compress(_big_payload()))
    damaged[offset] ^= 0x10
    path = tmp_path / "part_6.csv.gz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(DamagedPartError, match=r"part_6\.csv\.gz: damaged"):
        clean_part(path, export_job_id=EXPORT_JOB_ID)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty-file"),
        pytest.param(REAL_TEXT.encode(), id="plain-csv-not-gzip"),
        pytest.param(b"\x28\xb5\x2f\xfd" + b"\0" * 20, id="zstd-magic"),
    ],
)
def test_not_gzip_raises_export_format_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "part_9.csv.gz"
    path.write_bytes(content)
    with pytest.raises(ExportFormatError, match=r"part_9\.csv\.gz.*gzip"):
        clean_part(path, export_job_id=EXPORT_JOB_ID)


def test_invalid_utf8_raises(tmp_path: Path) -> None:
    path = write_gz(tmp_path, REAL_TEXT.encode().replace(b"determined-ai", b"determined-\xff\xfe"))
    with pytest.raises(ExportFormatError, match=r"part_0\.csv\.gz.*UTF-8"):
        clean_part(path, export_job_id=EXPORT_JOB_ID)


def test_empty_gzip_raises(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="empty"):
        clean_part(write_gz(tmp_path, b""), export_job_id=EXPORT_JOB_ID)


@pytest.mark.parametrize("ending", ["\n", "", "\r\n"], ids=["newline", "no-newline", "crlf"])
def test_header_only_part_gives_empty_frame_with_full_schema(tmp_path: Path, ending: str) -> None:
    path = write_gz(tmp_path, ",".join(REAL_HEADER) + ending)
    frame = clean_part(path, export_job_id=EXPORT_JOB_ID)
    assert frame.height == 0
    assert frame.schema == pl.Schema(CLEAN_SCHEMA)


def test_crlf_line_endings_load(tmp_path: Path, real_frame: pl.DataFrame) -> None:
    path = write_gz(tmp_path, REAL_TEXT.replace("\n", "\r\n"))
    assert clean_part(path, export_job_id=EXPORT_JOB_ID).equals(real_frame)


def test_many_rows_keep_order_and_count(tmp_path: Path) -> None:
    header, rows = real_table()
    job_id = header.index("JOB_ID")
    many: list[list[str]] = []
    for i in range(20_000):
        row = list(rows[i % 3])
        row[job_id] = f"00000000-0000-0000-0000-{i:012d}"
        many.append(row)
    frame = clean_part(write_gz(tmp_path, to_csv(header, many)), export_job_id=EXPORT_JOB_ID)
    assert frame.height == 20_000
    assert frame["job_id"][12_345] == "00000000-0000-0000-0000-000000012345"
    assert frame["total_credits"].sum() == pytest.approx((247 + 146) * (20_000 // 3) + 247 + 146)


def test_accepts_str_path(real_part: Path, real_frame: pl.DataFrame) -> None:
    path: Any = str(real_part)  # callers sometimes hold plain strings
    assert clean_part(path, export_job_id=EXPORT_JOB_ID).equals(real_frame)
