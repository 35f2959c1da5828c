"""`circleci_insights.daily_usage`: usage per day at the finest grain users slice by.

One row per day, organization, project, workflow, job, resource class, executor and branch, with
job-run counts by outcome, job seconds and every credit type. Summed over any subset of its keys it
equals the same sum over `circleci.job_runs`, which the sanity check verifies per day:

* `job_runs` counts every job row of the export, including jobs that never ran (blocked, or
  canceled before starting), whose job name, resource class and credits are empty (null here too);
* `successful_runs` / `failed_runs` / `canceled_runs` split them by outcome (see
  `circleci.vocabulary.FAILURE_STATUSES`);
* `job_seconds` sums JOB_RUN_SECONDS, the wall-clock time of one container; credits are already
  multiplied by parallelism in the export.

A refresh replaces its window of days in one transaction: a re-run never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from usage_assets.circleci.vocabulary import CANCELED_STATUS, CREDIT_COLUMNS, SUCCESS_STATUS
from usage_assets.ingest.duckdb_sql import fetch_one, transaction
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights.common import FAILURE_SQL, create_table, table

NAME = "daily_usage"
DAILY_USAGE = table(NAME)

KEY_COLUMNS: dict[str, str] = {
    "usage_date": "DATE",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "workflow_name": "VARCHAR",
    "job_name": "VARCHAR",
    "resource_class": "VARCHAR",
    "executor": "VARCHAR",
    "branch": "VARCHAR",
}
COLUMNS: dict[str, str] = {
    **KEY_COLUMNS,
    "job_runs": "BIGINT",
    "successful_runs": "BIGINT",
    "failed_runs": "BIGINT",
    "canceled_runs": "BIGINT",
    "job_seconds": "DOUBLE",
    **{name: "DOUBLE" for name in CREDIT_COLUMNS},
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}

# Source expression in job_runs for each key column (only the branch is renamed).
_SOURCE = {name: name for name in KEY_COLUMNS} | {"branch": "vcs_branch"}


@dataclass(frozen=True)
class WindowRefresh:
    """What one refresh of [first, last] did."""

    first: date
    last: date
    rows_deleted: int
    rows_written: int
    job_runs: int
    total_credits: float


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    create_table(conn, NAME, COLUMNS)


def refresh(conn: duckdb.DuckDBPyConnection, first: date, last: date, run_id: str) -> WindowRefresh:
    """Replace the rows of days [first, last] (inclusive) with a fresh aggregate of job_runs."""
    ensure_table(conn)
    keys = ", ".join(f"{_SOURCE[name]} AS {name}" for name in KEY_COLUMNS)
    group = ", ".join(_SOURCE[name] for name in KEY_COLUMNS)
    credits = ", ".join(f"coalesce(sum({name}), 0) AS {name}" for name in CREDIT_COLUMNS)
    window = [first, last]
    with transaction(conn):
        (deleted,) = fetch_one(
            conn, f"SELECT count(*) FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?", window
        )
        conn.execute(f"DELETE FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?", window)
        conn.execute(
            f"INSERT INTO {DAILY_USAGE} ({', '.join(COLUMNS)})"
            f" SELECT {keys}, count(*) AS job_runs,"
            f" count(*) FILTER (WHERE job_build_status = '{SUCCESS_STATUS}'),"
            f" count(*) FILTER (WHERE job_build_status IN {FAILURE_SQL}),"
            f" count(*) FILTER (WHERE job_build_status = '{CANCELED_STATUS}'),"
            f" coalesce(sum(job_run_seconds), 0), {credits}, ?, now()"
            f" FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ? GROUP BY {group}",
            [run_id, *window],
        )
    written, job_runs, total = fetch_one(
        conn,
        f"SELECT count(*), coalesce(sum(job_runs), 0), coalesce(sum(total_credits), 0)"
        f" FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?",
        window,
    )
    return WindowRefresh(first, last, int(deleted), int(written), int(job_runs), float(total))


def per_day(
    conn: duckdb.DuckDBPyConnection, first: date, last: date
) -> list[tuple[date, int, float]]:
    """(day, job runs, credits) for each loaded day of [first, last]."""
    return [
        (day, int(runs), float(credits))
        for day, runs, credits in conn.execute(
            f"SELECT usage_date, sum(job_runs), sum(total_credits) FROM {DAILY_USAGE}"
            " WHERE usage_date BETWEEN ? AND ? GROUP BY usage_date ORDER BY usage_date",
            [first, last],
        ).fetchall()
    ]
