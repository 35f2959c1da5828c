"""Data-quality rules for `circleci.job_runs`, as plain functions over a DuckDB connection.

Each returns a `RuleResult`; the Dagster checks in `assets/job_runs_checks.py` only wire them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from usage_assets.circleci.export_format import CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN
from usage_assets.ingest.cleaning import REQUIRED_COLUMNS, snake_case
from usage_assets.ingest.warehouse import JOB_RUNS, LOAD_RUN_ID_COLUMN, SCHEMA

# Credits are integers in every real file; a tolerance absorbs float noise if they ever are not.
_CREDIT_TOLERANCE = 1e-6


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


def job_ids_unique(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    row = conn.execute(
        f"SELECT count(*), count(DISTINCT job_id), count(job_id) FROM {JOB_RUNS}"
    ).fetchone()
    total, distinct, non_null = row if row else (0, 0, 0)
    duplicates = non_null - distinct
    null_ids = total - non_null
    return RuleResult(
        passed=duplicates == 0 and null_ids == 0,
        description=f"{duplicates} duplicated and {null_ids} null job_id(s) in {total} rows",
        metadata={"rows": total, "duplicate_job_ids": duplicates, "null_job_ids": null_ids},
    )


def credits_add_up(conn: duckdb.DuckDBPyConnection, run_id: str) -> RuleResult:
    components = " + ".join(f"coalesce({snake_case(c)}, 0)" for c in CREDIT_COMPONENT_COLUMNS)
    total = snake_case(TOTAL_CREDITS_COLUMN)
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE abs(({components}) - coalesce({total}, 0)) > ?),"
        f" any_value(job_id) FILTER (WHERE abs(({components}) - coalesce({total}, 0)) > ?), count(*)"
        f" FROM {JOB_RUNS} WHERE {LOAD_RUN_ID_COLUMN} = ?",
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
    conn: duckdb.DuckDBPyConnection, run_id: str, first: date, last: date
) -> RuleResult:
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE usage_date NOT BETWEEN ? AND ? OR usage_date IS NULL),"
        f" min(usage_date), max(usage_date), count(*) FROM {JOB_RUNS} WHERE {LOAD_RUN_ID_COLUMN} = ?",
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
