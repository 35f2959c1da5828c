"""`circleci_insights.workflow_runs`: one row per workflow run, rebuilt from its job rows.

The export has one row per job; a workflow's own facts (start, stop, success) repeat on each. A
workflow run is dated by its earliest job row's `usage_date` (`run_date`), and its outcome is:

* `running` while WORKFLOW_STOPPED_AT is empty (not finished when exported);
* `success` when IS_WORKFLOW_SUCCESSFUL;
* `failed` when any job failed (see `circleci.vocabulary.FAILURE_STATUSES`);
* `canceled` when a job was canceled and none failed;
* `other` for the rest (a job stuck queued or blocked in an otherwise finished workflow).

Its duration is WORKFLOW_STOPPED_AT minus WORKFLOW_FIRST_JOB_STARTED_AT, as CircleCI Insights
measures a workflow (queueing before the first job is not counted). `insights_credits` is compute +
DLC, the figure Insights calls Total Credits; `total_credits` all eight components.

A refresh of days [first, last] recomputes every workflow with a job row in those days from all of
its rows (a workflow crossing midnight has rows on two days) and replaces, in one transaction, the
rows dated in the window and those of the recomputed workflows: never a duplicate `workflow_id`.
The inserts go in batches of days (`plan_batches`), so memory is bounded by a batch's workflows,
not by the window's. Loads never write a NULL `usage_date` (a blocking rule), which lets each
batch read only the days its workflows' rows lie in.

No step reads the whole history: a workflow's job rows are dated at most USAGE_DATE_DRIFT from
each other (they carry its first start's date, see `job_runs_rules`), so its other rows are looked
for only that far around the window (`rows_range`), and its old row, dated by its rows' earliest
day, only that far again (`old_rows_range`). All of it is pruned by date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from usage_assets.circleci.vocabulary import CANCELED_STATUS
from usage_assets.ingest.duckdb_sql import fetch_one, transaction
from usage_assets.ingest.job_runs_rules import USAGE_DATE_DRIFT
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights.common import FAILURE_SQL, create_table, table

NAME = "workflow_runs"
WORKFLOW_RUNS = table(NAME)

COLUMNS: dict[str, str] = {
    "workflow_id": "VARCHAR",
    "run_date": "DATE",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "workflow_name": "VARCHAR",
    "branch": "VARCHAR",
    "pipeline_id": "VARCHAR",
    "pipeline_number": "BIGINT",
    "trigger_source": "VARCHAR",
    "status": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "stopped_at": "TIMESTAMPTZ",
    "duration_seconds": "DOUBLE",
    "jobs": "BIGINT",
    "job_seconds": "DOUBLE",
    "compute_credits": "DOUBLE",
    "total_credits": "DOUBLE",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
    # Added after the first release: last, so that older tables gain it in place.
    "insights_credits": "DOUBLE",
}

WORKFLOW_STATUSES = ("success", "failed", "canceled", "running", "other")

_INSIGHTS_CREDITS_SQL = "coalesce(sum(compute_credits), 0) + coalesce(sum(dlc_credits), 0)"

_AGGREGATE = f"""
    SELECT
        workflow_id,
        min(usage_date) AS run_date,
        any_value(organization_id) AS organization_id,
        any_value(organization_name) AS organization_name,
        any_value(project_id) AS project_id,
        any_value(project_name) AS project_name,
        any_value(workflow_name) AS workflow_name,
        any_value(vcs_branch) AS branch,
        any_value(pipeline_id) AS pipeline_id,
        any_value(pipeline_number) AS pipeline_number,
        any_value(pipeline_trigger_source) AS trigger_source,
        CASE
            WHEN count(*) FILTER (WHERE workflow_stopped_at IS NULL) > 0 THEN 'running'
            WHEN bool_or(is_workflow_successful) THEN 'success'
            WHEN bool_or(job_build_status IN {FAILURE_SQL}) THEN 'failed'
            WHEN bool_or(job_build_status = '{CANCELED_STATUS}') THEN 'canceled'
            ELSE 'other'
        END AS status,
        min(workflow_first_job_started_at) AS started_at,
        max(workflow_stopped_at) AS stopped_at,
        CASE WHEN count(*) FILTER (WHERE workflow_stopped_at IS NULL) = 0
            THEN epoch(max(workflow_stopped_at)) - epoch(min(workflow_first_job_started_at))
        END AS duration_seconds,
        count(*) AS jobs,
        coalesce(sum(job_run_seconds), 0) AS job_seconds,
        coalesce(sum(compute_credits), 0) AS compute_credits,
        coalesce(sum(total_credits), 0) AS total_credits,
        {_INSIGHTS_CREDITS_SQL} AS insights_credits
    FROM {JOB_RUNS}
    WHERE workflow_id IN (
        SELECT workflow_id FROM _touched
        WHERE run_date BETWEEN ? AND ? AND hash(workflow_id) % ? = ?
    )
    AND usage_date BETWEEN ? AND ?
    GROUP BY workflow_id
"""


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    added = create_table(conn, NAME, COLUMNS)
    if "insights_credits" in added:
        # A table from before the column: fill it for every workflow already there, once.
        conn.execute(
            f"""UPDATE {WORKFLOW_RUNS} w SET insights_credits = j.credits
            FROM (
                SELECT workflow_id, {_INSIGHTS_CREDITS_SQL} AS credits
                FROM {JOB_RUNS} GROUP BY workflow_id
            ) j
            WHERE j.workflow_id = w.workflow_id"""
        )


# The most workflows one INSERT aggregates. The aggregate keeps every workflow's text columns
# (ids, names, branch) on DuckDB's heap until it finishes, and a whole 31-day window of a 50 k
# job-runs-a-day org (~390 k workflows) did not fit in the warehouse's 256 MB; one statement per
# batch of days keeps memory at this many workflows, whatever the window's length.
BATCH_WORKFLOWS = 50_000


@dataclass(frozen=True)
class Batch:
    """Workflows dated `first` .. `last` (their run_date), those whose workflow_id hashes to
    `bucket` of `buckets` (a day with more than BATCH_WORKFLOWS workflows is split); their job
    rows lie in `first` .. `rows_until`."""

    first: date
    last: date
    rows_until: date
    buckets: int = 1
    bucket: int = 0


def plan_batches(
    days: Sequence[tuple[date, int, date]], limit: int = BATCH_WORKFLOWS
) -> list[Batch]:
    """Batches of at most about `limit` workflows from (run_date, workflows, last row day) per
    day, in day order: consecutive days are merged while they fit, a bigger day is split."""
    batches: list[Batch] = []
    pending: list[tuple[date, int, date]] = []

    def flush() -> None:
        if pending:
            batches.append(
                Batch(pending[0][0], pending[-1][0], max(until for _, _, until in pending))
            )
            pending.clear()

    for day, workflows, until in sorted(days):
        if workflows > limit:
            flush()
            buckets = -(-workflows // limit)
            batches.extend(Batch(day, day, until, buckets, b) for b in range(buckets))
            continue
        if pending and sum(n for _, n, _ in pending) + workflows > limit:
            flush()
        pending.append((day, workflows, until))
    flush()
    return batches


def rows_range(first: date, last: date) -> tuple[date, date]:
    """The days where the job rows of a workflow with a row in [first, last] can lie."""
    return first - USAGE_DATE_DRIFT, last + USAGE_DATE_DRIFT


def old_rows_range(first: date, last: date) -> tuple[date, date]:
    """The run dates an existing row of such a workflow can have: its rows' earliest day when it
    was built, and each of those rows may have moved by USAGE_DATE_DRIFT since."""
    low, high = rows_range(first, last)
    return low - USAGE_DATE_DRIFT, high + USAGE_DATE_DRIFT


def refresh(conn: duckdb.DuckDBPyConnection, first: date, last: date, run_id: str) -> int:
    """Rebuild the workflow runs with job rows in [first, last]; returns the rows written.

    One transaction: find the window's workflows with each one's run date and last row day
    (a narrow aggregate), delete their old rows and the window's, then insert them back one
    batch of days at a time (`plan_batches`), each INSERT reading only its days' job rows."""
    ensure_table(conn)
    window = [first, last]
    columns = ", ".join(COLUMNS)
    with transaction(conn):
        # Every row of a touched workflow counts, also those outside the window (a workflow
        # crossing midnight): its first and last row days bound what its batch reads.
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE _touched AS"
            " SELECT workflow_id, min(usage_date) AS run_date, max(usage_date) AS rows_until"
            f" FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ? AND workflow_id IN ("
            f"  SELECT workflow_id FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?)"
            " GROUP BY workflow_id",
            [*rows_range(first, last), *window],
        )
        conn.execute(
            f"DELETE FROM {WORKFLOW_RUNS} WHERE run_date BETWEEN ? AND ?"
            " AND (run_date BETWEEN ? AND ? OR workflow_id IN (SELECT workflow_id FROM _touched))",
            [*old_rows_range(first, last), *window],
        )
        days = conn.execute(
            "SELECT run_date, count(*), max(rows_until) FROM _touched GROUP BY run_date"
        ).fetchall()
        for batch in plan_batches([(d, int(n), u) for d, n, u in days]):
            conn.execute(
                f"INSERT INTO {WORKFLOW_RUNS} ({columns})"
                f" SELECT * EXCLUDE (insights_credits), ?, now(), insights_credits"
                f" FROM ({_AGGREGATE})",
                [
                    run_id,
                    batch.first,
                    batch.last,
                    batch.buckets,
                    batch.bucket,
                    batch.first,
                    batch.rows_until,
                ],
            )
        (written,) = fetch_one(conn, "SELECT count(*) FROM _touched")
        conn.execute("DROP TABLE _touched")
    return int(written)
