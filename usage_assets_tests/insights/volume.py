"""A large organization's `circleci.job_runs`, generated in DuckDB SQL for the volume tests.

The issue's org runs about 50,000 jobs a day. Rows come from one INSERT ... SELECT over
`range()`, so 31 days (1.55 M rows) take seconds, not the minutes an export through the API
would. Every value is a hash of the row's position: the same call always gives the same rows, on
any date, and the tests compare with an independent SQL computation rather than fixed numbers.

The shape is what the insights read: 2 to 6 jobs a workflow (4 on average: the issue's warehouse
has 7.3 M workflow runs for 20 M job runs, 2.7 a workflow, so this is, if anything, lighter), jobs
started one after another (so a workflow started late in the evening has job rows on the next day,
as in real exports), 40 projects on a main branch and feature branches, most workflows successful,
some failed, canceled or still running, credits on compute, DLC, storage and network, and ids,
names and branches as long as real ones (DuckDB keeps strings of up to 12 bytes inline, longer
ones on its heap, which is what a wide GROUP BY pays for). The table is the loader's own
(`ensure_job_runs_table`), so every column and type is the real one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb

from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.ingest.job_runs_table import JOB_RUNS, ensure_job_runs_table

JOBS_PER_DAY = 50_000
# Jobs per workflow: MIN_JOBS + (hash % (MAX_JOBS - MIN_JOBS + 1)), 4 on average.
MIN_JOBS, MAX_JOBS = 2, 6
PROJECTS = 40
BRANCHES_PER_PROJECT = 25


def _uuid(expression: str) -> str:
    """A UUID-shaped text (36 characters, like CircleCI's ids) derived from `expression`."""
    return f"md5({expression})::UUID::VARCHAR"


def workflows_per_day(
    jobs_per_day: int = JOBS_PER_DAY, min_jobs: int = MIN_JOBS, max_jobs: int = MAX_JOBS
) -> int:
    return round(jobs_per_day / ((min_jobs + max_jobs) / 2))


def generate_job_runs(
    conn: duckdb.DuckDBPyConnection,
    first: date,
    days: int,
    *,
    jobs_per_day: int = JOBS_PER_DAY,
    min_jobs: int = MIN_JOBS,
    max_jobs: int = MAX_JOBS,
) -> int:
    """Append about `jobs_per_day` job rows for each of `days` days from `first`; returns the
    table's rows. Workflows start on those days; a late one's last jobs fall on the day after."""
    ensure_job_runs_table(conn)
    spread = max_jobs - min_jobs + 1
    workflows = workflows_per_day(jobs_per_day, min_jobs, max_jobs)
    # Times are epoch seconds turned into TIMESTAMPTZ by to_timestamp: independent of the
    # session's time zone, and far cheaper than a time zone conversion per value.
    base = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    conn.execute(
        f"""
        INSERT INTO {JOB_RUNS} BY NAME
        WITH workflow AS (
            SELECT
                d * {workflows} + w AS n,
                (hash(d, w) >> 1)::BIGINT AS h,
                -- a start anywhere in the day, so some workflows run past midnight
                {base} + d * 86400 + (hash(d, w, 1) >> 1)::BIGINT % 86000 AS started
            FROM range({days}) t(d), range({workflows}) u(w)
        ), shaped AS (
            SELECT n, h, started,
                {min_jobs} + (h % {spread})::INTEGER AS jobs,
                (h >> 8) % {PROJECTS} AS project,
                CASE WHEN (h >> 16) % 3 = 0 THEN 0 ELSE 1 + (h >> 20) % {BRANCHES_PER_PROJECT} END
                    AS branch,
                (h >> 40) % 100 AS fate,
                {_uuid("'workflow' || n")} AS workflow_id,
                {_uuid("'pipeline' || n")} AS pipeline_id
            FROM workflow
        ), job AS (
            SELECT s.*, k, j,
                started + k * 300 + j % 240 AS job_started,
                30 + (j >> 8) % 600 AS seconds,
                (j >> 20) % 4 AS size
            FROM shaped s, LATERAL (
                SELECT k, (hash(s.n, k) >> 1)::BIGINT AS j FROM range(s.jobs) r(k)
            )
        )
        SELECT
            {_uuid("'org'")} AS organization_id,
            'big-org-engineering' AS organization_name,
            DATE '2019-03-01' AS organization_created_date,
            {_uuid("'project' || project")} AS project_id,
            'big-org-service-' || project || '-api' AS project_name,
            DATE '2020-01-01' AS project_created_date,
            'github' AS vcs_name,
            'https://github.com/big-org/big-org-service-' || project || '-api' AS vcs_url,
            CASE WHEN branch = 0 THEN 'main'
                ELSE 'feature/PLAT-' || (1000 + project * 100 + branch) || '-retry-flaky-uploads'
            END AS vcs_branch,
            pipeline_id,
            to_timestamp(started - 30) AS pipeline_created_at,
            1000 + n AS pipeline_number,
            FALSE AS is_unregistered_user,
            CASE WHEN fate % 10 = 0 THEN 'scheduled_pipeline' ELSE 'webhook' END
                AS pipeline_trigger_source,
            'user-' || (h >> 50) % 300 || '-0000-0000-0000-000000000000' AS pipeline_trigger_user_id,
            workflow_id,
            ['build-and-test', 'lint-and-typecheck', 'deploy-to-production', 'nightly-integration']
                [1 + (h >> 48) % 4] AS workflow_name,
            to_timestamp(started - 20) AS workflow_first_job_queued_at,
            to_timestamp(started) AS workflow_first_job_started_at,
            CASE WHEN fate >= 2 THEN to_timestamp(started + jobs * 300 + 900) END
                AS workflow_stopped_at,
            fate >= 20 AS is_workflow_successful,
            ['checkout-and-install', 'unit-tests', 'integration-tests', 'build-docker-image',
                'lint', 'typecheck', 'publish-artifacts', 'deploy'][1 + k % 8] AS job_name,
            k + 1 AS job_run_number,
            -- unique per job, UUID-shaped: the workflow's id with the job's number at the end
            left(workflow_id, 24) || lpad(k::VARCHAR, 12, '0') AS job_id,
            DATE '1970-01-01' + (job_started // 86400)::INTEGER AS job_run_date,
            to_timestamp(job_started - 5) AS job_run_queued_at,
            to_timestamp(job_started) AS job_run_started_at,
            to_timestamp(job_started + seconds) AS job_run_stopped_at,
            CASE
                WHEN fate < 2 AND k = jobs - 1 THEN 'running'
                WHEN fate >= 20 THEN 'success'
                WHEN fate < 15 AND k = jobs - 1 THEN 'failed'
                WHEN fate < 15 THEN 'success'
                WHEN k = jobs - 1 THEN 'canceled'
                ELSE 'success'
            END AS job_build_status,
            ['small', 'medium', 'large', 'xlarge'][1 + size] AS resource_class,
            'linux' AS operating_system,
            CASE WHEN size = 3 THEN 'machine' ELSE 'docker' END AS executor,
            1 AS parallelism,
            seconds::DOUBLE AS job_run_seconds,
            ((j >> 30) % 100)::DOUBLE AS median_cpu_utilization_pct,
            ((j >> 37) % 100)::DOUBLE AS max_cpu_utilization_pct,
            ((j >> 44) % 100)::DOUBLE AS median_ram_utilization_pct,
            ((j >> 51) % 100)::DOUBLE AS max_ram_utilization_pct,
            seconds / 60 * (5 << size) AS compute_credits,
            CASE WHEN k = 0 THEN 200.0 ELSE 0.0 END AS dlc_credits,
            0.0 AS user_credits,
            ((j >> 24) % 10) / 10 AS storage_credits,
            ((j >> 28) % 4) / 10 AS network_credits,
            0.0 AS lease_credits,
            0.0 AS lease_overage_credits,
            0.0 AS ipranges_credits,
            seconds / 60 * (5 << size) + CASE WHEN k = 0 THEN 200.0 ELSE 0.0 END
                + ((j >> 24) % 10) / 10 + ((j >> 28) % 4) / 10 AS total_credits,
            DATE '1970-01-01' + (job_started // 86400)::INTEGER AS usage_date,
            'volume-export' AS export_job_id,
            'volume-load' AS load_run_id,
            to_timestamp({base}) AS loaded_at
        FROM job
        """
    )
    (rows,) = fetch_one(conn, f"SELECT count(*) FROM {JOB_RUNS}")
    return int(rows)
