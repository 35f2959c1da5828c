"""Data-quality rules for `circleci.job_runs`, as plain functions over a DuckDB connection.

Each returns a `RuleResult`; the Dagster checks in `defs/usage/checks.py` only wire them up, and the loader runs
:func:`load_invariants` inside its transaction so a load that breaks one never commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from usage_assets.circleci.export_format import CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN
from usage_assets.ingest.cleaning import REQUIRED_COLUMNS, snake_case
from usage_assets.ingest.job_runs_table import (
    DAY_LOADS,
    JOB_RUNS,
    LOAD_RUN_ID_COLUMN,
    LOADED_AT_COLUMN,
    SCHEMA,
)

# Credits are integers in every real file; a tolerance absorbs float noise if they ever are not.
_CREDIT_TOLERANCE = 1e-6

# How far a job run's usage_date (JOB_RUN_DATE) can move between two exports of it. The loader
# looks for a re-exported job run's older row only this far outside its window, and a workflow's
# job rows are looked for only this far from the days refreshed. Why 2 days
# (/work/shared/reference/circleci-data-facts.md §5, circleci-usage-api.md §2.5 notes):
# * JOB_RUN_DATE is the date of the workflow's first job start in every sampled row (1,253/1,253),
#   also for jobs that start after midnight, so a row's date does not change once its workflow has
#   started; a re-run is a new JOB_ID (and a new workflow), never the same row redated;
# * the spec says "the date the job run instance began": were CircleCI to date a job by its own
#   start (or queue time) instead, the sampled gap is under a day (jobs just past midnight), so it
#   moves by 1 day; one more day covers long workflows and a queue-vs-start difference.
# A longer move (a job behind an approval hold, which can wait up to 90 days) would leave two rows
# of one job_id more than this apart: the scheduled table-wide check (`job_ids_unique` over the
# whole table) finds them and names the days to re-export.
USAGE_DATE_DRIFT = timedelta(days=2)

# Rule names, which are also the names of the Dagster checks that evaluate them.
REQUIRED_COLUMNS_RULE = "required_columns_present"
UNIQUE_JOB_ID_RULE = "job_id_unique"
CREDITS_RULE = "credit_components_sum_to_total"
WINDOW_RULE = "usage_date_inside_window"
# Table-wide invariants, checked on a schedule rather than by every load (they scan the table).
TABLE_UNIQUE_JOB_ID_RULE = "job_id_unique_in_whole_table"
TABLE_USAGE_DATE_RULE = "usage_date_never_null"

# Duplicated job ids named in a failed table-wide check (enough to act on, not a dump).
_EXAMPLES = 5


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
    """No null and no repeated job_id, in the whole table or in the usage days of `window`.

    With a window, `usage_date BETWEEN` lets DuckDB skip the other row groups (zonemaps), so a
    load's check costs its window, not the table. A failure names up to five job ids and the days
    their rows are on: re-exporting those days (one range run) leaves one row per job run."""
    where = "WHERE usage_date BETWEEN ? AND ?" if window else ""
    params: list[object] = list(window) if window else []
    row = conn.execute(
        f"SELECT count(*), count(DISTINCT job_id), count(job_id) FROM {JOB_RUNS} {where}", params
    ).fetchone()
    total, distinct, non_null = row if row else (0, 0, 0)
    duplicates = non_null - distinct
    null_ids = total - non_null
    metadata: dict[str, object] = {
        "rows": total,
        "duplicate_job_ids": duplicates,
        "null_job_ids": null_ids,
    }
    description = f"{duplicates} duplicated and {null_ids} null job_id(s) in {total} rows"
    if duplicates:
        examples = conn.execute(
            f"SELECT job_id, list(DISTINCT usage_date ORDER BY usage_date) FROM {JOB_RUNS}"
            f" {where}{' AND' if where else ' WHERE'} job_id IS NOT NULL"
            f" GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id LIMIT {_EXAMPLES}",
            params,
        ).fetchall()
        days = sorted({day for _, dated in examples for day in dated if day is not None})
        named = ", ".join(f"{job_id} on {', '.join(map(str, dated))}" for job_id, dated in examples)
        description += (
            f"; for example {named}. Repair: re-export the days involved"
            f" ({', '.join(map(str, days))}) as one range run, which keeps the newest row"
        )
        metadata["example_job_ids"] = named
        metadata["days_to_reexport"] = ", ".join(map(str, days))
    return RuleResult(
        passed=duplicates == 0 and null_ids == 0, description=description, metadata=metadata
    )


def usage_dates_present(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    """No row without a usage_date anywhere: every partition-pruned step (the window checks, the
    loader's probe, the workflow_runs batches) would never see such a row."""
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE usage_date IS NULL),"
        f" any_value(job_id) FILTER (WHERE usage_date IS NULL), count(*) FROM {JOB_RUNS}"
    ).fetchone()
    missing, example, total = row if row else (0, None, 0)
    return RuleResult(
        passed=missing == 0,
        description=f"{missing} of {total} rows have no usage_date"
        + (f" (for example job {example}); reload the window that wrote them" if missing else ""),
        metadata={
            "rows": total,
            "rows_without_usage_date": missing,
            "example_job_id": example or "none",
        },
    )


def table_invariants(conn: duckdb.DuckDBPyConnection) -> dict[str, RuleResult]:
    """The invariants that need the whole table; the scheduled, non-blocking check runs them.

    Only these two: a load's own rows and window are checked by the load (and its checks), and
    everything else a load could break lies in its window. What the window checks cannot see is a
    job_id repeated on days further apart than USAGE_DATE_DRIFT, and a row with no date at all."""
    return {
        TABLE_UNIQUE_JOB_ID_RULE: job_ids_unique(conn),
        TABLE_USAGE_DATE_RULE: usage_dates_present(conn),
    }


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


def _rows_of(
    run_id_param: str, this_transaction_only: bool, loaded_since: datetime | None = None
) -> str:
    """The WHERE clause picking a run's rows; in a load's transaction, only the rows it wrote.

    DuckDB's now() is the start time of the current transaction, and the loader stamps each row's
    loaded_at with it, so `loaded_at = now()` is exactly this transaction's rows (a run that loads
    several windows writes each in its own transaction)."""
    clause = f"{LOAD_RUN_ID_COLUMN} = {run_id_param}"
    if this_transaction_only:
        return f"{clause} AND {LOADED_AT_COLUMN} = now()"
    if loaded_since is not None:
        # Rows are appended in load order, so loaded_at rises along the table and DuckDB's
        # zonemaps skip every row group loaded before the run: the run's rows cost their own
        # scan, not the table's (a load_run_id filter alone reads the whole column).
        return f"{clause} AND {LOADED_AT_COLUMN} >= '{loaded_since.isoformat()}'::TIMESTAMPTZ"
    return clause


def run_loaded_since(conn: duckdb.DuckDBPyConnection, run_id: str) -> datetime | None:
    """When the run's first load transaction began, from `day_loads` (a row per day it wrote,
    stamped like its job rows): None when the run wrote no day, and so no job row.

    Read from the warehouse, not from Dagster's run record, so that both times come from the same
    clock (DuckDB's now())."""
    row = conn.execute(
        f"SELECT min({LOADED_AT_COLUMN}) FROM {DAY_LOADS} WHERE {LOAD_RUN_ID_COLUMN} = ?",
        [run_id],
    ).fetchone()
    return row[0] if row else None


def credits_add_up(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    this_transaction_only: bool = False,
    loaded_since: datetime | None = None,
) -> RuleResult:
    """On a run's rows (`loaded_since`: none was loaded before it, which prunes the scan)."""
    components = " + ".join(f"coalesce({snake_case(c)}, 0)" for c in CREDIT_COMPONENT_COLUMNS)
    total = snake_case(TOTAL_CREDITS_COLUMN)
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE abs(({components}) - coalesce({total}, 0)) > ?),"
        f" any_value(job_id) FILTER (WHERE abs(({components}) - coalesce({total}, 0)) > ?), count(*)"
        f" FROM {JOB_RUNS} WHERE {_rows_of('?', this_transaction_only, loaded_since)}",
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
    loaded_since: datetime | None = None,
) -> RuleResult:
    """A run's rows all lie in [first, last] (`loaded_since` as in :func:`credits_add_up`)."""
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE usage_date NOT BETWEEN ? AND ? OR usage_date IS NULL),"
        f" min(usage_date), max(usage_date), count(*) FROM {JOB_RUNS}"
        f" WHERE {_rows_of('?', this_transaction_only, loaded_since)}",
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
