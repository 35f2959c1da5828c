"""The DuckDB helpers every table writer shares: a transaction, and the one-row fetch."""

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


def fetch_one(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> tuple[Any, ...]:
    """The single row of an aggregate query."""
    row = conn.execute(sql, list(params)).fetchone()
    if row is None:  # pragma: no cover - aggregate queries always return a row
        raise RuntimeError(f"no row from {sql}")
    return tuple(row)
