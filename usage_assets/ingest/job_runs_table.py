"""The warehouse's own tables: `circleci.job_runs` and its load bookkeeping, `circleci.day_loads`.

Kept apart from the loader so the data-quality rules, the loader and the insights all import one
definition of each table without importing each other.
"""

from __future__ import annotations

import duckdb
import polars as pl

from usage_assets.ingest.cleaning import CLEAN_SCHEMA

SCHEMA = "circleci"
JOB_RUNS = f"{SCHEMA}.job_runs"
LOAD_RUN_ID_COLUMN = "load_run_id"
LOADED_AT_COLUMN = "loaded_at"

# One row per usage day ever loaded: which export wrote the day's rows and when that export was
# created. A load skips the days a newer export already wrote, so the rows always come from the
# newest export whatever order the loads run in.
DAY_LOADS = f"{SCHEMA}.day_loads"
_DAY_LOADS_COLUMNS: dict[str, str] = {
    "usage_date": "DATE NOT NULL",
    "export_job_id": "VARCHAR NOT NULL",
    "export_created_at": "TIMESTAMPTZ NOT NULL",
    LOAD_RUN_ID_COLUMN: "VARCHAR NOT NULL",
    LOADED_AT_COLUMN: "TIMESTAMPTZ NOT NULL",
}

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


def ensure_job_runs_table(conn: duckdb.DuckDBPyConnection) -> None:
    """Create `circleci.job_runs` and `circleci.day_loads` if they do not exist yet."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    ddl = ", ".join(f"{name} {sql_type}" for name, sql_type in job_runs_columns().items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {JOB_RUNS} ({ddl})")
    # No primary key on purpose: DuckDB checks unique indexes eagerly, so deleting a day and
    # inserting it again in one transaction can fail as a duplicate key.
    loads_ddl = ", ".join(f"{name} {sql_type}" for name, sql_type in _DAY_LOADS_COLUMNS.items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {DAY_LOADS} ({loads_ddl})")
