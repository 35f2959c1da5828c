"""The load's cross-window probe reads only USAGE_DATE_DRIFT days either side of its window; the
weekly table-wide check finds what lies further away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from usage_assets.ingest.job_runs_rules import (
    TABLE_UNIQUE_JOB_ID_RULE,
    TABLE_USAGE_DATE_RULE,
    USAGE_DATE_DRIFT,
    table_invariants,
)
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.ingest.warehouse import load_window, probe_range
from usage_assets_tests.ingest.test_warehouse import DAY1, JOB_ID, RUN_DATE, rows, write_part
from usage_assets_tests.lake import connect_backend


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    # The DuckDB file only: the probe is one SQL statement, shared by both backends, whose
    # moves test_warehouse.py runs on the DuckLake too.
    connection = connect_backend("duckdb", tmp_path, None)
    try:
        yield connection
    finally:
        connection.close()


def _copies(conn: duckdb.DuckDBPyConnection, job_id: str) -> list[tuple[object, str]]:
    return conn.execute(
        f"SELECT usage_date, export_job_id FROM {JOB_RUNS} WHERE job_id = ? ORDER BY usage_date",
        [job_id],
    ).fetchall()


def test_the_probe_is_the_window_widened_by_the_drift() -> None:
    assert probe_range(DAY1, DAY1) == (DAY1 - USAGE_DATE_DRIFT, DAY1 + USAGE_DATE_DRIFT)


def test_a_job_moving_within_the_bound_keeps_one_row_the_newest_exports(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    original = rows(DAY1)
    load_window(
        conn, [("e1", write_part(tmp_path / "a.csv.gz", original))],
        window_start=DAY1, window_end=DAY1, run_id="r1",
    )  # fmt: skip
    moved = list(original[0])
    new_day = DAY1 + USAGE_DATE_DRIFT
    moved[RUN_DATE] = new_day.isoformat()
    report = load_window(
        conn, [("e2", write_part(tmp_path / "b.csv.gz", [moved]))],
        window_start=new_day, window_end=new_day, run_id="r2",
    )  # fmt: skip
    assert _copies(conn, moved[JOB_ID]) == [(new_day, "e2")]
    assert report.days_changed_outside_window == [DAY1]
    assert all(result.passed for result in table_invariants(conn).values())


def test_a_copy_beyond_the_bound_is_left_and_the_table_check_names_it(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    far_day = DAY1 - USAGE_DATE_DRIFT - USAGE_DATE_DRIFT
    stale = list(rows(DAY1)[0])
    stale[RUN_DATE] = far_day.isoformat()
    load_window(
        conn, [("old", write_part(tmp_path / "old.csv.gz", [stale]))],
        window_start=far_day, window_end=far_day, run_id="r0",
    )  # fmt: skip
    report = load_window(
        conn, [("e1", write_part(tmp_path / "a.csv.gz", rows(DAY1)))],
        window_start=DAY1, window_end=DAY1, run_id="r1",
    )  # fmt: skip
    # Outside the probe: not read, not removed, not counted.
    assert _copies(conn, stale[JOB_ID]) == [(far_day, "old"), (DAY1, "e1")]
    assert report.days_changed_outside_window == []
    results = table_invariants(conn)
    assert results[TABLE_USAGE_DATE_RULE].passed
    unique = results[TABLE_UNIQUE_JOB_ID_RULE]
    assert not unique.passed
    assert stale[JOB_ID] in unique.description
    assert unique.metadata["days_to_reexport"] == f"{far_day}, {DAY1}"
    assert "re-export" in unique.description


def test_the_table_check_finds_a_row_without_a_usage_date(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    load_window(
        conn, [("e1", write_part(tmp_path / "a.csv.gz", rows(DAY1)))],
        window_start=DAY1, window_end=DAY1, run_id="r1",
    )  # fmt: skip
    conn.execute(f"UPDATE {JOB_RUNS} SET usage_date = NULL WHERE rowid = 0")
    result = table_invariants(conn)[TABLE_USAGE_DATE_RULE]
    assert not result.passed
    assert result.metadata["rows_without_usage_date"] == 1
