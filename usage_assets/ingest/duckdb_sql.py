"""The DuckDB helpers every table writer shares: a transaction, the one-row fetch, and what differs
between the DuckDB file and a DuckLake (the one dialect switch; see `usage_assets.ingest.lake`).

What our SQL needed on a DuckLake, checked against DuckLake 1.5.5: `DELETE ... RETURNING` is
refused ("not yet supported for deletion of a DuckLake table"), so `delete_returning` selects the
rows, then deletes them, in the caller's transaction. Everything else the pipeline runs works as is:
no table has a primary key, unique constraint, index or sequence (DuckLake has none), `ALTER TABLE
ADD COLUMN`, `CREATE OR REPLACE TEMP TABLE` and `rowid` (DuckLake's row ids grow with insertion,
like DuckDB's) behave the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb


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


def is_ducklake(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's default catalog is a DuckLake."""
    row = conn.execute(
        "SELECT type FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return row is not None and row[0] == "ducklake"


def delete_returning(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    where: str,
    params: Sequence[Any],
    returning: str,
) -> list[tuple[Any, ...]]:
    """`DELETE FROM table WHERE where RETURNING returning`, on a DuckDB file or a DuckLake.

    Call it inside a transaction: on a DuckLake the SELECT and the DELETE are two statements, and
    only a transaction makes them see the same rows."""
    if not is_ducklake(conn):
        return conn.execute(
            f"DELETE FROM {table} WHERE {where} RETURNING {returning}", list(params)
        ).fetchall()
    rows = conn.execute(f"SELECT {returning} FROM {table} WHERE {where}", list(params)).fetchall()
    if rows:
        conn.execute(f"DELETE FROM {table} WHERE {where}", list(params))
    return rows


def fetch_one(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> tuple[Any, ...]:
    """The single row of an aggregate query."""
    row = conn.execute(sql, list(params)).fetchone()
    if row is None:  # pragma: no cover - aggregate queries always return a row
        raise RuntimeError(f"no row from {sql}")
    return tuple(row)
