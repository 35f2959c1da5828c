"""What every insights module shares: the schema, table helpers, and the status SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import duckdb

from usage_assets.circleci.vocabulary import FAILURE_STATUSES
from usage_assets.ingest.duckdb_sql import fetch_one, transaction
from usage_assets.ingest.job_runs_table import JOB_RUNS, ensure_job_runs_table

SCHEMA = "circleci_insights"


def table(name: str) -> str:
    return f"{SCHEMA}.{name}"


def sql_strings(values: Sequence[str]) -> str:
    """A SQL list literal of constant strings (module constants only, never user input)."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


FAILURE_SQL = sql_strings(FAILURE_STATUSES)


def create_table(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    columns: Mapping[str, str],
    *,
    recreate_if_changed: bool = False,
) -> list[str]:
    """Create `circleci_insights.<name>` (and `circleci.job_runs`, which every query reads), or
    bring a table made by an older version to `columns`; returns the columns it had to add.

    `recreate_if_changed` is for tables rebuilt whole on every refresh: one whose columns differ
    is dropped and created anew. Otherwise missing columns are added (NULL in existing rows; the
    caller backfills what it can) and columns no longer listed are left alone."""
    ensure_job_runs_table(conn)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    existing = [
        str(column)
        for (column,) in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [SCHEMA, name],
        ).fetchall()
    ]
    if existing and recreate_if_changed and existing != list(columns):
        conn.execute(f"DROP TABLE {table(name)}")
        existing = []
    ddl = ", ".join(f"{column} {sql_type}" for column, sql_type in columns.items())
    if not existing:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table(name)} ({ddl})")
        return []
    added = [column for column in columns if column not in existing]
    for column in added:
        conn.execute(f"ALTER TABLE {table(name)} ADD COLUMN {column} {columns[column]}")
    return added


def create_rebuilt_table(
    conn: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, str]
) -> None:
    """`create_table` for a table that every refresh rebuilds whole from its sources (a roll-up).
    If the warehouse holds it with other columns (written by an older version), it is dropped
    first: the next refresh rebuilds it, so nothing is lost, and a run never fails on a stale
    layout."""
    create_table(conn, name, columns, recreate_if_changed=True)


def count_rows(conn: duckdb.DuckDBPyConnection, name: str) -> int:
    (rows,) = fetch_one(conn, f"SELECT count(*) FROM {table(name)}")
    return int(rows)


def loaded_range(conn: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last `usage_date` in `circleci.job_runs`, or None while it is empty."""
    ensure_job_runs_table(conn)
    first, last = fetch_one(conn, f"SELECT min(usage_date), max(usage_date) FROM {JOB_RUNS}")
    return (first, last) if first is not None else None


def replace_all(
    conn: duckdb.DuckDBPyConnection, name: str, select_sql: str, params: Sequence[Any] = ()
) -> int:
    """Rebuild a whole (unpartitioned) table from a query in one transaction; returns its rows."""
    with transaction(conn):
        conn.execute(f"DELETE FROM {table(name)}")
        conn.execute(f"INSERT INTO {table(name)} {select_sql}", list(params))
    return count_rows(conn, name)


REFRESHED_AT_COLUMN = "refreshed_at"


def replace_all_rows(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Replace a whole table with rows computed in Python, stamped with one `refreshed_at`, in one
    transaction. `columns` name the rows' values; `refreshed_at` is set here, not by the caller."""
    with transaction(conn):
        conn.execute(f"DELETE FROM {table(name)}")
        insert_rows(conn, name, [c for c in columns if c != REFRESHED_AT_COLUMN], rows)
        conn.execute(f"UPDATE {table(name)} SET {REFRESHED_AT_COLUMN} = now()")


def insert_rows(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    if rows:
        placeholders = ", ".join("?" for _ in columns)
        conn.executemany(
            f"INSERT INTO {table(name)} ({', '.join(columns)}) VALUES ({placeholders})",
            [list(row) for row in rows],
        )
