"""Loading cleaned export parts into DuckDB's `circleci.job_runs`, idempotently.

A load replaces one partition window in one transaction ("delete window, then insert", as in
dagster-open-platform): re-running a window never duplicates rows, and a load that fails half-way
leaves the previous rows untouched. Parts are cleaned one at a time (polars) and appended to an
on-disk staging table, so memory is bounded by one part, not by the export. A job run appears
once: within a load the last copy wins, and a later export of the same `job_id` replaces the row
an earlier export wrote, even when it sits in another window.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from usage_assets.cleaning import CLEAN_SCHEMA, check_header, clean_part, read_header

SCHEMA = "circleci"
JOB_RUNS = f"{SCHEMA}.job_runs"
LOAD_RUN_ID_COLUMN = "load_run_id"
LOADED_AT_COLUMN = "loaded_at"

_DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Datetime: "TIMESTAMPTZ",
    pl.Boolean: "BOOLEAN",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
}


def job_runs_columns() -> dict[str, str]:
    """Column name -> DuckDB type, in table order."""
    columns = {name: _DUCKDB_TYPES[dtype.base_type()] for name, dtype in CLEAN_SCHEMA.items()}
    columns[LOAD_RUN_ID_COLUMN] = "VARCHAR"
    columns[LOADED_AT_COLUMN] = "TIMESTAMPTZ"
    return columns


@dataclass
class LoadReport:
    """What one window load did, for asset metadata."""

    export_job_ids: list[str]
    window_start: date
    window_end: date
    parts: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_outside_window: int = 0
    duplicate_rows_dropped: int = 0
    rows_replaced: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)


def ensure_job_runs_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    ddl = ", ".join(f"{name} {sql_type}" for name, sql_type in job_runs_columns().items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {JOB_RUNS} ({ddl})")


def load_window(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, Path]],
    *,
    window_start: date,
    window_end: date,
    run_id: str,
) -> LoadReport:
    """Replace `job_runs` rows of [window_start, window_end] (inclusive) with the given parts.

    `parts` are (export job id, part path) pairs in load order: a job run found in several parts
    keeps its last copy. Header problems are checked for every part before anything is written,
    so a missing required column fails the load with nothing changed.
    """
    report = LoadReport(
        export_job_ids=list(dict.fromkeys(job_id for job_id, _ in parts)),
        window_start=window_start,
        window_end=window_end,
        parts=len(parts),
    )
    unknown: dict[str, None] = {}
    missing: dict[str, None] = {}
    for _, path in parts:
        header_check = check_header(read_header(path))
        unknown.update(dict.fromkeys(header_check.unknown))
        missing.update(dict.fromkeys(header_check.missing_optional))
    report.unknown_columns = list(unknown)
    report.missing_optional_columns = list(missing)

    ensure_job_runs_table(conn)
    staging = f"{SCHEMA}._staging_{uuid.uuid4().hex[:12]}"
    columns = list(job_runs_columns())
    column_list = ", ".join(columns)
    clean_columns = ", ".join(CLEAN_SCHEMA)
    try:
        # On disk, not TEMP: DuckDB can then spill it, and memory stays bounded by one part.
        conn.execute(
            f"CREATE TABLE {staging} AS SELECT *, 0::BIGINT AS _seq FROM {JOB_RUNS} LIMIT 0"
        )
        for sequence, (export_job_id, path) in enumerate(parts):
            frame = clean_part(path, export_job_id=export_job_id)
            report.rows_read += frame.height
            conn.register("_part", frame.to_arrow())
            try:
                conn.execute(
                    f"INSERT INTO {staging} ({clean_columns}, {LOAD_RUN_ID_COLUMN}, {LOADED_AT_COLUMN}, _seq)"
                    f" SELECT {clean_columns}, ?, now(), ? FROM _part",
                    [run_id, sequence],
                )
            finally:
                conn.unregister("_part")
            del frame

        window = [window_start, window_end]
        (report.rows_outside_window,) = _one(
            conn, f"SELECT count(*) FROM {staging} WHERE usage_date NOT BETWEEN ? AND ?", window
        )
        deduped = f"{staging}_dedup"
        conn.execute(
            f"CREATE TABLE {deduped} AS SELECT {column_list} FROM {staging}"
            " WHERE usage_date BETWEEN ? AND ?"
            " QUALIFY row_number() OVER (PARTITION BY job_id ORDER BY _seq DESC) = 1",
            window,
        )
        (in_window,) = _one(conn, f"SELECT count(*) FROM {deduped}")
        report.duplicate_rows_dropped = report.rows_read - report.rows_outside_window - in_window

        conn.execute("BEGIN TRANSACTION")
        try:
            (report.rows_replaced,) = _one(
                conn,
                f"SELECT count(*) FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?"
                f" OR job_id IN (SELECT job_id FROM {deduped})",
                window,
            )
            conn.execute(f"DELETE FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?", window)
            conn.execute(f"DELETE FROM {JOB_RUNS} WHERE job_id IN (SELECT job_id FROM {deduped})")
            conn.execute(
                f"INSERT INTO {JOB_RUNS} ({column_list}) SELECT {column_list} FROM {deduped}"
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        report.rows_loaded = in_window
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {staging}")
        conn.execute(f"DROP TABLE IF EXISTS {staging}_dedup")
    return report


def _one(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()
) -> tuple[int, ...]:
    row = conn.execute(sql, list(params)).fetchone()
    if row is None:  # pragma: no cover - aggregate queries always return a row
        raise RuntimeError(f"no row from {sql}")
    return tuple(int(value) for value in row)
