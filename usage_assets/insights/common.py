"""What every insights module shares: the schema, job statuses, and small DuckDB helpers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import duckdb

from usage_assets.ingest.warehouse import JOB_RUNS, ensure_job_runs_table

SCHEMA = "circleci_insights"

# CircleCI job statuses as they appear in JOB_BUILD_STATUS. A job "failed" when it ran and did
# not succeed for a reason of its own (including an infrastructure failure or a timeout);
# "canceled" is someone's (or auto-cancel's) decision, not a failure. Everything else
# (running, queued, blocked, not_run, on_hold, ...) has no outcome yet or never ran.
SUCCESS_STATUS = "success"
FAILURE_STATUSES: tuple[str, ...] = ("failed", "infrastructure_fail", "timedout")
CANCELED_STATUS = "canceled"

# The eight credit columns of the export, in their documented order, then the total.
CREDIT_COLUMNS: tuple[str, ...] = (
    "compute_credits",
    "dlc_credits",
    "user_credits",
    "storage_credits",
    "network_credits",
    "lease_credits",
    "lease_overage_credits",
    "ipranges_credits",
    "total_credits",
)


def table(name: str) -> str:
    return f"{SCHEMA}.{name}"


def sql_strings(values: Sequence[str]) -> str:
    """A SQL list literal of constant strings (module constants only, never user input)."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


FAILURE_SQL = sql_strings(FAILURE_STATUSES)


def create_table(conn: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, str]) -> None:
    """Create `circleci_insights.<name>` (and `circleci.job_runs`, which every query reads)."""
    ensure_job_runs_table(conn)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    ddl = ", ".join(f"{column} {sql_type}" for column, sql_type in columns.items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table(name)} ({ddl})")


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: readers see the old rows or the new ones, never a half-written mix."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def fetch_one(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> tuple[Any, ...]:
    row = conn.execute(sql, list(params)).fetchone()
    if row is None:  # pragma: no cover - aggregate queries always return a row
        raise RuntimeError(f"no row from {sql}")
    return tuple(row)


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
