"""Checks on `job_runs`: four blocking ones, evaluated together on one DuckDB connection after
every load, the table-wide ones on their own schedule, and the freshness check (yesterday loaded
by the deadline; see `usage_assets.defs.freshness`).

A load's checks read only its window (`usage_date BETWEEN`, which DuckDB prunes) or its own rows
(pruned by `loaded_at`), so they cost the same at 1 M or 40 M rows of history. What only a scan of
the whole table can see (a job_id repeated further apart than the loader looks, a row without a
date) is `job_runs_table_checks`: non-blocking, run by `check_job_runs_table` weekly.

One op rather than four: separate check ops run in separate processes, and DuckDB lets only one
process open the file at a time. The freshness check reads only Dagster's event log, never the
warehouse, so it is an op of its own without the pool.
"""

from collections.abc import Iterator, Mapping

import dagster as dg
from dagster_duckdb import DuckDBResource

from usage_assets.defs.check_results import check_result
from usage_assets.defs.constants import RANGE_END_TAG, RANGE_START_TAG, WAREHOUSE_POOL
from usage_assets.defs.freshness import build_partition_freshness_checks
from usage_assets.defs.partitions import partition_day
from usage_assets.defs.resources import warehouse_connection
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.ingest.job_runs_rules import (
    CREDITS_RULE,
    REQUIRED_COLUMNS_RULE,
    TABLE_UNIQUE_JOB_ID_RULE,
    TABLE_USAGE_DATE_RULE,
    UNIQUE_JOB_ID_RULE,
    WINDOW_RULE,
    RuleResult,
    credits_add_up,
    job_ids_unique,
    required_columns_present,
    run_loaded_since,
    table_invariants,
    usage_dates_inside,
)
from usage_assets.ingest.job_runs_table import ensure_job_runs_table

REQUIRED_COLUMNS_CHECK = REQUIRED_COLUMNS_RULE
UNIQUE_JOB_ID_CHECK = UNIQUE_JOB_ID_RULE
CREDITS_CHECK = CREDITS_RULE
WINDOW_CHECK = WINDOW_RULE
TABLE_UNIQUE_JOB_ID_CHECK = TABLE_UNIQUE_JOB_ID_RULE
TABLE_USAGE_DATE_CHECK = TABLE_USAGE_DATE_RULE

_PARTITION = "dagster/partition"

job_runs_freshness_checks = build_partition_freshness_checks([job_runs])


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            REQUIRED_COLUMNS_CHECK,
            asset=job_runs,
            blocking=True,
            description="Every column the warehouse relies on exists.",
        ),
        dg.AssetCheckSpec(
            UNIQUE_JOB_ID_CHECK,
            asset=job_runs,
            blocking=True,
            description="One row per job run in the run's window: job_id is never null or "
            "repeated there.",
        ),
        dg.AssetCheckSpec(
            CREDITS_CHECK,
            asset=job_runs,
            blocking=True,
            description="On the rows just loaded, the eight credit types sum to total_credits.",
        ),
        dg.AssetCheckSpec(
            WINDOW_CHECK,
            asset=job_runs,
            blocking=True,
            description="The rows just loaded all fall inside the run's partition window.",
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def job_runs_checks(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
) -> Iterator[dg.AssetCheckResult]:
    first, last = _run_window(context.run.tags)
    run_id = context.run.run_id
    window = (
        (partition_day(first), partition_day(last))
        if first is not None and last is not None
        else None
    )
    with warehouse_connection(warehouse) as conn:
        since = run_loaded_since(conn, run_id)
        results = {
            REQUIRED_COLUMNS_CHECK: required_columns_present(conn),
            # Without a window (a run from outside the sensor's tags) the whole table: correct,
            # only slower.
            UNIQUE_JOB_ID_CHECK: job_ids_unique(conn, window),
            CREDITS_CHECK: credits_add_up(conn, run_id, loaded_since=since),
        }
        if window is not None:
            results[WINDOW_CHECK] = usage_dates_inside(conn, run_id, *window, loaded_since=since)
        else:
            results[WINDOW_CHECK] = RuleResult(True, "run has no partition window to check against")
    for name, result in results.items():
        yield check_result(job_runs.key, name, result)


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            TABLE_UNIQUE_JOB_ID_CHECK,
            asset=job_runs,
            blocking=False,
            description="One row per job run across the whole table (a load checks only its "
            "window and the days next to it); a failure names the days to re-export.",
        ),
        dg.AssetCheckSpec(
            TABLE_USAGE_DATE_CHECK,
            asset=job_runs,
            blocking=False,
            description="No row of the whole table lacks a usage_date (every load-scoped step "
            "selects rows by it).",
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def job_runs_table_checks(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
) -> Iterator[dg.AssetCheckResult]:
    """The table-wide invariants: a scan of the whole table, so weekly, not in every load."""
    with warehouse_connection(warehouse) as conn:
        ensure_job_runs_table(conn)
        results = table_invariants(conn)
    for name, result in results.items():
        yield check_result(job_runs.key, name, result)


def _run_window(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    get = tags.get
    if get(RANGE_START_TAG) and get(RANGE_END_TAG):
        return get(RANGE_START_TAG), get(RANGE_END_TAG)
    partition = get(_PARTITION)
    return partition, partition
