"""Data-quality rules for `circleci.job_runs`, as plain functions over a DuckDB connection.

Each returns a `RuleResult`; the Dagster checks in `defs/usage/checks.py` only wire them up, and the loader runs
:func:`load_invariants` inside its transaction so a load that breaks one never commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from usage_assets.circleci.export_format import CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN
from usage_assets.ingest.cleaning import REQUIRED_COLUMNS, snake_case
from usage_assets.ingest.job_runs_table import (
    JOB_RUNS,
    LOAD_RUN_ID_COLUMN,
    LOADED_AT_COLUMN,
    SCHEMA,
)

# Credits are integers in every real file; a tolerance absorbs float noise if they ever are not.
_CREDIT_TOLERANCE = 1e-6

# Rule names, which are also the names of the Dagster checks that evaluate them.
REQUIRED_COLUMNS_RULE = "required_columns_present"
UNIQUE_JOB_ID_RULE = "job_id_unique"
CREDITS_RULE = "credit_components_sum_to_total"
WINDOW_RULE = "usage_date_inside_window"


@dataclass(frozen=True)
class RuleResult:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def required_columns_present(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    present = {
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = 'job_runs'",
            [SCHEMA],
        ).fetchall()
    }
    missing = sorted(snake_case(c) for c in REQUIRED_COLUMNS if snake_case(c) not in present)
    return RuleResult(
        passed=not missing,
        description="all required columns present"
        if not missing
        else f"missing: {', '.join(missing)}",
        metadata={"missing_columns": ", ".join(missing) or "none", "columns": len(present)},
    )


def job_ids_unique(
    conn: duckdb.DuckDBPyConnection, window: tuple[date, date] | None = None
) -> RuleResult:
    """No null and no repeated job_id, in the whole table or in the usage days of `window`."""
    where = "WHERE usage_date BETWEEN ? AND ?" if window else ""
    row = conn.execute(
        f"SELECT count(*), count(DISTINCT job_id), count(job_id) FROM {JOB_RUNS} {where}",
        list(window) if window else [],
    ).fetchone()
    total, distinct, non_null = row if row else (0, 0, 0)
    duplicates = non_null - distinct
    null_ids = total - non_null
    return RuleResult(
        passed=duplicates == 0 and null_ids == 0,
        description=f"{duplicates} duplicated and {null_ids} null job_id(s) in {total} rows",
        metadata={"rows": total, "duplicate_job_ids": duplicates, "null_job_ids": null_ids},
    )


def load_invariants(
    conn: duckdb.DuckDBPyConnection, run_id: str, first: date, last: date
) -> dict[str, RuleResult]:
    """The blocking rules a load must meet before it commits, scoped to what the load touched
    (its window and its rows), so they cost a window's scan, not the table's."""
    return {
        UNIQUE_JOB_ID_RULE: job_ids_unique(conn, (first, last)),
        CREDITS_RULE: credits_add_up(conn, run_id, this_transaction_only=True),
        WINDOW_RULE: usage_dates_inside(conn, run_id, first, last, this_transaction_only=True),
    }


def _rows_of(run_id_param: str, this_transaction_only: bool) -> str:
    """The WHERE clause picking a run's rows; in a load's transaction, only the rows it wrote.

    DuckDB's now() is the start time of the current transaction, and the loader stamps each row's
    loaded_at with it, so `loaded_at = now()` is exactly this transaction's rows (a run that loads
    several windows writes each in its own transaction)."""
    clause = f"{LOAD_RUN_ID_COLUMN} = {run_id_param}"
    return f"{clause} AND {LOADED_AT_COLUMN} = now()" if this_transaction_only else clause


def credits_add_up(
    conn: duckdb.DuckDBPyConnection, run_id: str, *, this_transaction_only: bool = False
) -> RuleResult:
    components = " + ".join(f"coalesce({snake_case(c)}, 0)" for c in CREDIT_COMPONENT_COLUMNS)
    total = snake_case(TOTAL_CREDITS_COLUMN)
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE abs(({components}) - coalesce({total}, 0)) > ?),"
        f" any_value(job_id) FILTER (WHERE abs(({components}) - coalesce({total}, 0)) > ?), count(*)"
        f" FROM {JOB_RUNS} WHERE {_rows_of('?', this_transaction_only)}",
        [_CREDIT_TOLERANCE, _CREDIT_TOLERANCE, run_id],
    ).fetchone()
    bad, example, checked = row if row else (0, None, 0)
    return RuleResult(
        passed=bad == 0,
        description=f"{bad} of {checked} loaded rows have credit components that do not sum to total_credits",
        metadata={
            "rows_checked": checked,
            "mismatched_rows": bad,
            "example_job_id": example or "none",
        },
    )


def usage_dates_inside(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    first: date,
    last: date,
    *,
    this_transaction_only: bool = False,
) -> RuleResult:
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE usage_date NOT BETWEEN ? AND ? OR usage_date IS NULL),"
        f" min(usage_date), max(usage_date), count(*) FROM {JOB_RUNS}"
        f" WHERE {_rows_of('?', this_transaction_only)}",
        [first, last, run_id],
    ).fetchone()
    outside, earliest, latest, checked = row if row else (0, None, None, 0)
    return RuleResult(
        passed=outside == 0,
        description=f"{outside} of {checked} loaded rows have a usage_date outside {first} .. {last}",
        metadata={
            "rows_checked": checked,
            "rows_outside": outside,
            "earliest_usage_date": str(earliest),
            "latest_usage_date": str(latest),
        },
    )
