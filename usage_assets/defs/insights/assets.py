"""The `circleci_insights` assets: thin Dagster wiring over `usage_assets.insights`.

Two ops, each holding one DuckDB connection for all its tables (DuckDB admits one writing process,
and an op per table would mean, under the multiprocess executor, a process start and a file-lock
wait per table):

* `insights_daily`, daily-partitioned like `job_runs`: `daily_usage` and `workflow_runs`, refreshed
  for the run's days (delete the window, insert, one transaction). The sensor's
  `download_and_load_usage` runs include it, so every load refreshes its days.
* `insights_rollups`, unpartitioned: performance, resource-class rates, right-sizing, costs,
  chargeback, forecast and the HTML report. The performance tables recompute only the periods
  whose inputs changed (`full_rebuild` in the op's config recomputes all of them); the others are
  rebuilt whole from bounded windows or the daily tables (cheap: they are aggregates). Also in the
  sensor's runs, after the daily ones; an automation condition refreshes them after any other run
  that updates their inputs (a manual reload from the UI, say).

Checks are declared on the assets and evaluated in the same op, on the same connection, right after
the write: a separate check op would be another process fighting over the DuckDB file lock.
"""

from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from usage_assets.defs.check_results import check_result
from usage_assets.defs.constants import WAREHOUSE_POOL
from usage_assets.defs.insights.metadata import (
    TOP_ROWS,
    anomaly_result,
    markdown_table,
    table_schema,
)
from usage_assets.defs.insights.rollups import ROLLUPS, RollupRun
from usage_assets.defs.insights.specs import (
    ANOMALY_CHECK,
    COVERAGE_CHECK,
    DAILY_CHECKS,
    DAILY_SPECS,
    DAILY_USAGE,
    ROLLUP_CHECKS,
    ROLLUP_SPECS,
    SANE_CHECK,
    WORKFLOW_RUNS,
)
from usage_assets.defs.partitions import daily_partitions, partition_day
from usage_assets.defs.resources import (
    InsightsResource,
    insights_writer_lock,
    warehouse_connection,
)
from usage_assets.defs.usage.job_runs import DAYS_CHANGED_OUTSIDE_WINDOW, job_runs
from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights import (
    anomalies,
    cost,
    daily_usage,
    forecast,
    performance,
    resource_class_rates,
    right_sizing,
    sanity,
    workflow_runs,
)
from usage_assets.insights.common import count_rows, loaded_range


@dg.multi_asset(
    name="insights_daily",
    specs=DAILY_SPECS,
    check_specs=DAILY_CHECKS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    can_subset=True,
)
def insights_daily(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Refresh the run's days of the daily insights tables from circleci.job_runs, and the days
    outside them whose job rows this run's load removed (a job run a newer export moved into
    the run's days: without this its old day would keep counting it)."""
    key_range = context.partition_key_range
    first, last = partition_day(key_range.start), partition_day(key_range.end)
    run_id = context.run.run_id
    selected = context.selected_asset_keys
    also = [day for day in _days_changed_outside_by_this_run(context) if not first <= day <= last]
    # The checks look at every day refreshed: the window and those (at most USAGE_DATE_DRIFT
    # away, so the span stays a few days).
    checked = (min([first, *also]), max([last, *also]))
    checks: dict[tuple[dg.AssetKey, str], tuple[RuleResult, dg.AssetCheckSeverity]] = {}
    with insights_writer_lock(warehouse), warehouse_connection(warehouse) as conn:
        if DAILY_USAGE in selected:
            for day in also:
                daily_usage.refresh(conn, day, day, run_id)
            refreshed = daily_usage.refresh(conn, first, last, run_id)
            cost.ensure_tables(conn)
            top = cost.top_projects(conn, first, last, TOP_ROWS)
            yield dg.MaterializeResult(
                asset_key=DAILY_USAGE,
                metadata={
                    "dagster/row_count": count_rows(conn, daily_usage.NAME),
                    "dagster/column_schema": table_schema(daily_usage.COLUMNS),
                    "window_start": str(first),
                    "window_end": str(last),
                    "days_refreshed_outside_window": ", ".join(map(str, also)) or "none",
                    "rows_written": refreshed.rows_written,
                    "rows_replaced": refreshed.rows_deleted,
                    "job_runs": refreshed.job_runs,
                    "credits": dg.MetadataValue.float(refreshed.total_credits),
                    "top_projects": dg.MetadataValue.md(
                        markdown_table(
                            ["project", "organization", "job runs", "job credits"],
                            [
                                [p.project, p.organization, f"{p.job_runs:,}", f"{p.credits:,.0f}"]
                                for p in top
                            ],
                        )
                    ),
                },
            )
            loaded = _loaded_days(context, conn)
            found = anomalies.detect(conn, first, last)
            checks[(DAILY_USAGE, COVERAGE_CHECK)] = (
                sanity.coverage(loaded),
                dg.AssetCheckSeverity.ERROR,
            )
            checks[(DAILY_USAGE, ANOMALY_CHECK)] = (
                anomaly_result(found),
                dg.AssetCheckSeverity.WARN,
            )
            checks[(DAILY_USAGE, SANE_CHECK)] = (
                sanity.daily_usage_sane(conn, checked),
                dg.AssetCheckSeverity.ERROR,
            )
        if WORKFLOW_RUNS in selected:
            written = sum(workflow_runs.refresh(conn, day, day, run_id) for day in also)
            written += workflow_runs.refresh(conn, first, last, run_id)
            by_status = conn.execute(
                f"SELECT status, count(*) FROM {workflow_runs.WORKFLOW_RUNS}"
                " WHERE run_date BETWEEN ? AND ? GROUP BY status ORDER BY 2 DESC",
                [first, last],
            ).fetchall()
            yield dg.MaterializeResult(
                asset_key=WORKFLOW_RUNS,
                metadata={
                    "dagster/row_count": count_rows(conn, workflow_runs.NAME),
                    "dagster/column_schema": table_schema(workflow_runs.COLUMNS),
                    "window_start": str(first),
                    "window_end": str(last),
                    "days_refreshed_outside_window": ", ".join(map(str, also)) or "none",
                    "workflow_runs_rebuilt": written,
                    "runs_by_status": dg.MetadataValue.md(
                        markdown_table(["status", "runs"], [[s, f"{n:,}"] for s, n in by_status])
                    ),
                },
            )
            checks[(WORKFLOW_RUNS, SANE_CHECK)] = (
                sanity.workflow_runs_sane(conn, checked),
                dg.AssetCheckSeverity.ERROR,
            )
    yield from _check_results(context, checks)


def _days_changed_outside_by_this_run(context: dg.AssetExecutionContext) -> list[date]:
    """Days the job_runs load of this run changed outside its windows, from the metadata of its
    materializations in this run (Dagster's event log: the warehouse keeps no trace of a removed
    row). Empty when the run loaded nothing (an insights-only run)."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    days: set[date] = set()
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is None or materialization.asset_key != job_runs.key:
            continue
        value = materialization.metadata.get(DAYS_CHANGED_OUTSIDE_WINDOW)
        text = value.value if isinstance(value, dg.TextMetadataValue) else None
        if text and text != "none":
            days.update(date.fromisoformat(part.strip()) for part in text.split(","))
    return sorted(days)


def _loaded_days(context: dg.AssetExecutionContext, conn: duckdb.DuckDBPyConnection) -> set[date]:
    """Days loaded per Dagster (materialized job_runs partitions, even if they had no usage) and
    per the warehouse (days with rows)."""
    days = {
        partition_day(key) for key in context.instance.get_materialized_partitions(job_runs.key)
    }
    days.update(
        day for (day,) in conn.execute(f"SELECT DISTINCT usage_date FROM {JOB_RUNS}").fetchall()
    )
    return days


class RollupsConfig(dg.Config):
    """The launchpad's settings of `insights_rollups`."""

    full_rebuild: bool = Field(
        default=False,
        description="Recompute every period of workflow_performance and job_performance, "
        "ignoring what the last refresh recorded (the result is the same; it only costs more).",
    )


@dg.multi_asset(
    name="insights_rollups",
    specs=ROLLUP_SPECS,
    check_specs=ROLLUP_CHECKS,
    pool=WAREHOUSE_POOL,
    can_subset=True,
)
def insights_rollups(
    context: dg.AssetExecutionContext,
    config: RollupsConfig,
    warehouse: DuckDBResource,
    insights: InsightsResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Rebuild the selected roll-ups and the report, in the registry's (dependency) order."""
    selected = context.selected_asset_keys
    checks: dict[tuple[dg.AssetKey, str], tuple[RuleResult, dg.AssetCheckSeverity]] = {}
    # A malformed reference file fails the run before it takes the warehouse.
    reference = insights.reference_data()
    with insights_writer_lock(warehouse), warehouse_connection(warehouse) as conn:
        # Every table exists before any is read: a run may select only some of them (the report
        # alone, say) on a warehouse that never had the others.
        daily_usage.ensure_table(conn)
        workflow_runs.ensure_table(conn)
        performance.ensure_tables(conn)
        resource_class_rates.ensure_table(conn)
        right_sizing.ensure_table(conn)
        cost.ensure_tables(conn)
        forecast.ensure_table(conn)
        run = RollupRun(
            conn=conn,
            run_id=context.run.run_id,
            reference=reference,
            loaded=loaded_range(conn),
            report_path=Path(insights.report_path),
            log=context.log,
            full_rebuild=config.full_rebuild,
        )
        for rollup in ROLLUPS:
            if rollup.key in selected:
                yield dg.MaterializeResult(asset_key=rollup.key, metadata=rollup.refresh(run))
                checks[(rollup.key, rollup.check_name)] = (rollup.check(run), rollup.severity)
    yield from _check_results(context, checks)


def _check_results(
    context: dg.AssetExecutionContext,
    checks: Mapping[tuple[dg.AssetKey, str], tuple[RuleResult, dg.AssetCheckSeverity]],
) -> Iterator[dg.AssetCheckResult]:
    """The results of the checks this run selected."""
    selected = context.selected_asset_check_keys
    for (key, name), (result, severity) in checks.items():
        if dg.AssetCheckKey(key, name) in selected:
            yield check_result(key, name, result, severity)
