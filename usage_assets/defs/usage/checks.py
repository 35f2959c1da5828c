"""Checks on `job_runs`: four blocking ones, evaluated together on one DuckDB connection, and the
freshness check (yesterday loaded by the deadline; see `usage_assets.defs.freshness`).

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
    UNIQUE_JOB_ID_RULE,
    WINDOW_RULE,
    RuleResult,
    credits_add_up,
    job_ids_unique,
    required_columns_present,
    usage_dates_inside,
)

REQUIRED_COLUMNS_CHECK = REQUIRED_COLUMNS_RULE
UNIQUE_JOB_ID_CHECK = UNIQUE_JOB_ID_RULE
CREDITS_CHECK = CREDITS_RULE
WINDOW_CHECK = WINDOW_RULE

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
            description="One row per job run: job_id is never null or repeated.",
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
    with warehouse_connection(warehouse) as conn:
        results = {
            REQUIRED_COLUMNS_CHECK: required_columns_present(conn),
            UNIQUE_JOB_ID_CHECK: job_ids_unique(conn),
            CREDITS_CHECK: credits_add_up(conn, run_id),
        }
        if first is not None and last is not None:
            results[WINDOW_CHECK] = usage_dates_inside(
                conn, run_id, partition_day(first), partition_day(last)
            )
        else:
            results[WINDOW_CHECK] = RuleResult(True, "run has no partition window to check against")
    for name, result in results.items():
        yield check_result(job_runs.key, name, result)


def _run_window(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    get = tags.get
    if get(RANGE_START_TAG) and get(RANGE_END_TAG):
        return get(RANGE_START_TAG), get(RANGE_END_TAG)
    partition = get(_PARTITION)
    return partition, partition
