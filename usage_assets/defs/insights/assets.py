"""The `circleci_insights` assets: thin Dagster wiring over `usage_assets.insights`.

Two ops, each holding one DuckDB connection for all its tables (DuckDB admits one writing process,
and an op per table would mean, under the multiprocess executor, a process start and a file-lock
wait per table):

* `insights_daily`, daily-partitioned like `job_runs`: `daily_usage` and `workflow_runs`, refreshed
  for the run's days (delete the window, insert, one transaction). The sensor's
  `download_and_load_usage` runs include it, so every load refreshes its days.
* `insights_rollups`, unpartitioned: performance, right-sizing, costs, chargeback, forecast and the
  HTML report, rebuilt whole from the daily tables (cheap: they are aggregates). Also in the
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

from usage_assets.defs.check_results import check_result
from usage_assets.defs.constants import WAREHOUSE_POOL
from usage_assets.defs.insights.metadata import (
    TOP_ROWS,
    anomaly_result,
    chargeback_markdown,
    cost_markdown,
    forecast_markdown,
    markdown_table,
    performance_result,
    sizing_markdown,
    table_schema,
)
from usage_assets.defs.insights.specs import (
    ANOMALY_CHECK,
    COVERAGE_CHECK,
    CREDIT_COSTS,
    CREDIT_FORECAST,
    DAILY_CHECKS,
    DAILY_SPECS,
    DAILY_USAGE,
    JOB_PERFORMANCE,
    RIGHT_SIZING,
    ROLLUP_CHECKS,
    ROLLUP_SPECS,
    SANE_CHECK,
    SELF_CONTAINED_CHECK,
    TEAM_CHARGEBACK,
    USAGE_REPORT,
    WORKFLOW_PERFORMANCE,
    WORKFLOW_RUNS,
)
from usage_assets.defs.partitions import daily_partitions, partition_day
from usage_assets.defs.resources import InsightsResource, warehouse_connection
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.ingest.warehouse import JOB_RUNS
from usage_assets.insights import (
    anomalies,
    cost,
    daily_usage,
    forecast,
    performance,
    report,
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
    """Refresh the run's days of the daily insights tables from circleci.job_runs."""
    key_range = context.partition_key_range
    first, last = partition_day(key_range.start), partition_day(key_range.end)
    run_id = context.run.run_id
    selected = context.selected_asset_keys
    checks: dict[tuple[dg.AssetKey, str], tuple[RuleResult, dg.AssetCheckSeverity]] = {}
    with warehouse_connection(warehouse) as conn:
        if DAILY_USAGE in selected:
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
                    "rows_written": refreshed.rows_written,
                    "rows_replaced": refreshed.rows_deleted,
                    "job_runs": refreshed.job_runs,
                    "credits": dg.MetadataValue.float(refreshed.total_credits),
                    "top_projects": dg.MetadataValue.md(
                        markdown_table(
                            ["project", "organization", "job runs", "credits"],
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
                sanity.daily_usage_sane(conn),
                dg.AssetCheckSeverity.ERROR,
            )
        if WORKFLOW_RUNS in selected:
            written = workflow_runs.refresh(conn, first, last, run_id)
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
                    "workflow_runs_rebuilt": written,
                    "runs_by_status": dg.MetadataValue.md(
                        markdown_table(["status", "runs"], [[s, f"{n:,}"] for s, n in by_status])
                    ),
                },
            )
            checks[(WORKFLOW_RUNS, SANE_CHECK)] = (
                sanity.workflow_runs_sane(conn),
                dg.AssetCheckSeverity.ERROR,
            )
    yield from _check_results(context, checks)


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


@dg.multi_asset(
    name="insights_rollups",
    specs=ROLLUP_SPECS,
    check_specs=ROLLUP_CHECKS,
    pool=WAREHOUSE_POOL,
    can_subset=True,
)
def insights_rollups(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, insights: InsightsResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Rebuild the selected roll-ups (in dependency order) and the report."""
    reference = insights.reference_data()
    selected = context.selected_asset_keys
    run_id = context.run.run_id
    sources = dict(reference.sources)
    checks: dict[tuple[dg.AssetKey, str], tuple[RuleResult, dg.AssetCheckSeverity]] = {}
    error = dg.AssetCheckSeverity.ERROR
    with warehouse_connection(warehouse) as conn:
        # Every table exists before any is read: a run may select only some of them (the report
        # alone, say) on a warehouse that never had the others.
        daily_usage.ensure_table(conn)
        workflow_runs.ensure_table(conn)
        performance.ensure_tables(conn)
        right_sizing.ensure_table(conn)
        cost.ensure_tables(conn)
        forecast.ensure_table(conn)
        loaded = loaded_range(conn)

        performance_tables = [
            name
            for key, name in (
                (WORKFLOW_PERFORMANCE, performance.WORKFLOW_NAME),
                (JOB_PERFORMANCE, performance.JOB_NAME),
            )
            if key in selected
        ]
        if performance_tables:
            rows = performance.refresh(
                conn,
                loaded,
                run_id,
                default_branches=reference.default_branches,
                which=performance_tables,
            )
            if WORKFLOW_PERFORMANCE in selected:
                yield performance_result(
                    conn, WORKFLOW_PERFORMANCE, rows[performance.WORKFLOW_NAME], loaded
                )
                checks[(WORKFLOW_PERFORMANCE, SANE_CHECK)] = (
                    sanity.workflow_performance_sane(conn),
                    error,
                )
            if JOB_PERFORMANCE in selected:
                yield performance_result(conn, JOB_PERFORMANCE, rows[performance.JOB_NAME], loaded)
                checks[(JOB_PERFORMANCE, SANE_CHECK)] = (sanity.job_performance_sane(conn), error)

        if RIGHT_SIZING in selected:
            price = reference.price_on(loaded[1]) if loaded else None
            sizing = right_sizing.refresh(conn, loaded, run_id, reference.resource_classes, price)
            if sizing.unknown_classes:
                context.log.warning(
                    "Resource classes not in resource_classes.csv (add them to size these jobs): "
                    + ", ".join(sizing.unknown_classes)
                )
            yield dg.MaterializeResult(
                asset_key=RIGHT_SIZING,
                metadata={
                    "dagster/row_count": sizing.rows,
                    "dagster/column_schema": table_schema(right_sizing.COLUMNS),
                    "window": f"{sizing.window[0]} .. {sizing.window[1]}"
                    if sizing.window
                    else "none",
                    "downsize_candidates": sizing.downsize_candidates,
                    "at_ceiling": sizing.at_ceiling,
                    "est_credits_saved_per_month": dg.MetadataValue.float(
                        sizing.est_credits_saved_per_month
                    ),
                    "unknown_resource_classes": ", ".join(sizing.unknown_classes) or "none",
                    "resource_classes_file": sources.get("resource_classes.csv", ""),
                    "top_savings": dg.MetadataValue.md(sizing_markdown(conn)),
                },
            )
            checks[(RIGHT_SIZING, SANE_CHECK)] = (sanity.right_sizing_sane(conn), error)

        if CREDIT_COSTS in selected:
            costs = cost.refresh_costs(conn, run_id, reference.prices, reference.teams)
            if costs.days_without_price:
                context.log.warning(
                    f"{costs.days_without_price} day(s) have no price in price_per_credit.csv; "
                    "their cost is empty"
                )
            yield dg.MaterializeResult(
                asset_key=CREDIT_COSTS,
                metadata={
                    "dagster/row_count": costs.rows,
                    "dagster/column_schema": table_schema(cost.COST_COLUMNS),
                    "total_credits": dg.MetadataValue.float(costs.total_credits),
                    "total_cost": ", ".join(
                        f"{value:,.2f} {currency}"
                        for currency, value in costs.total_cost_by_currency.items()
                    )
                    or "no price",
                    "days_without_price": costs.days_without_price,
                    "unassigned_projects": ", ".join(costs.unassigned_projects) or "none",
                    "price_file": sources.get("price_per_credit.csv", ""),
                    "team_file": sources.get("team_mapping.csv", ""),
                    "top_projects_by_cost": dg.MetadataValue.md(cost_markdown(conn, loaded)),
                },
            )
            checks[(CREDIT_COSTS, SANE_CHECK)] = (sanity.credit_costs_sane(conn), error)

        if TEAM_CHARGEBACK in selected:
            rows_written = cost.refresh_chargeback(conn, run_id)
            yield dg.MaterializeResult(
                asset_key=TEAM_CHARGEBACK,
                metadata={
                    "dagster/row_count": rows_written,
                    "dagster/column_schema": table_schema(cost.CHARGEBACK_COLUMNS),
                    "latest_month_by_team": dg.MetadataValue.md(chargeback_markdown(conn)),
                },
            )
            checks[(TEAM_CHARGEBACK, SANE_CHECK)] = (sanity.team_chargeback_sane(conn), error)

        if CREDIT_FORECAST in selected:
            projection = forecast.refresh(conn, run_id, reference.budgets)
            yield dg.MaterializeResult(
                asset_key=CREDIT_FORECAST,
                metadata={
                    "dagster/row_count": projection.rows,
                    "dagster/column_schema": table_schema(forecast.COLUMNS),
                    "as_of": str(projection.as_of),
                    "over_budget": ", ".join(projection.over_budget) or "none",
                    "budget_file": sources.get("budgets.csv", ""),
                    "forecast": dg.MetadataValue.md(forecast_markdown(conn)),
                },
            )
            checks[(CREDIT_FORECAST, SANE_CHECK)] = (sanity.credit_forecast_sane(conn), error)

        if USAGE_REPORT in selected:
            path = Path(insights.report_path)
            data = report.collect(conn)
            size = report.write(path, report.render(data))
            yield dg.MaterializeResult(
                asset_key=USAGE_REPORT,
                metadata={
                    "report_path": dg.MetadataValue.path(str(path)),
                    "bytes": size,
                    "days": len(data.days),
                    "first_day": str(data.first_day),
                    "last_day": str(data.last_day),
                },
            )
            checks[(USAGE_REPORT, SELF_CONTAINED_CHECK)] = (
                sanity.report_self_contained(path),
                error,
            )
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
