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

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from usage_assets.defs.check_results import check_result
from usage_assets.defs.constants import INSIGHTS_GROUP, OWNERS, WAREHOUSE_POOL
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
from usage_assets.insights.common import SCHEMA, count_rows, loaded_range, table

_TOP = 10

DAILY_USAGE = dg.AssetKey(daily_usage.NAME)
WORKFLOW_RUNS = dg.AssetKey(workflow_runs.NAME)
WORKFLOW_PERFORMANCE = dg.AssetKey(performance.WORKFLOW_NAME)
JOB_PERFORMANCE = dg.AssetKey(performance.JOB_NAME)
RIGHT_SIZING = dg.AssetKey(right_sizing.NAME)
CREDIT_COSTS = dg.AssetKey(cost.COSTS_NAME)
TEAM_CHARGEBACK = dg.AssetKey(cost.CHARGEBACK_NAME)
CREDIT_FORECAST = dg.AssetKey(forecast.NAME)
USAGE_REPORT = dg.AssetKey("usage_report")

COVERAGE_CHECK = "no_missing_days"
ANOMALY_CHECK = "no_credit_anomalies"
SANE_CHECK = "sane"
SELF_CONTAINED_CHECK = "self_contained"

# Refresh after any run that updated an input without also refreshing these (a run that did, such
# as the sensor's, is ignored by any_deps_updated). Unlike `eager()`, it does not wait for every
# upstream partition to exist: 13 months of daily partitions are never all loaded.
ROLLUP_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("inputs updated by another run")


def _schema(columns: Mapping[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, sql) for name, sql in columns.items()])


def _spec(
    key: dg.AssetKey,
    description: str,
    columns: Mapping[str, str] | None,
    deps: Sequence[dg.AssetKey | dg.AssetsDefinition],
    *,
    kinds: set[str] | None = None,
    partitioned: bool = False,
) -> dg.AssetSpec:
    metadata: dict[str, Any] = {}
    if columns is not None:
        metadata["dagster/table_name"] = table(key.path[-1])
        metadata["dagster/column_schema"] = _schema(columns)
    if partitioned:
        metadata["partition_expr"] = "usage_date" if key == DAILY_USAGE else "run_date"
    return dg.AssetSpec(
        key,
        description=description,
        deps=deps,
        group_name=INSIGHTS_GROUP,
        kinds=kinds or {"duckdb", "sql"},
        owners=OWNERS,
        metadata=metadata,
        automation_condition=None if partitioned else ROLLUP_AUTOMATION,
    )


def _sane(key: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(SANE_CHECK, asset=key, description=description)


# --------------------------------------------------------------------------------------------
# Daily-partitioned: daily_usage, workflow_runs
# --------------------------------------------------------------------------------------------

DAILY_SPECS = [
    _spec(
        DAILY_USAGE,
        "Usage per day, organization, project, workflow, job, resource class and branch: job runs "
        "by outcome, job seconds and every credit type.",
        daily_usage.COLUMNS,
        [job_runs],
        partitioned=True,
    ),
    _spec(
        WORKFLOW_RUNS,
        "One row per workflow run: outcome, duration (first job started to stopped), credits.",
        workflow_runs.COLUMNS,
        [job_runs],
        partitioned=True,
    ),
]
DAILY_CHECKS = [
    dg.AssetCheckSpec(
        COVERAGE_CHECK,
        asset=DAILY_USAGE,
        description="No day is missing between the first and the last loaded day.",
    ),
    dg.AssetCheckSpec(
        ANOMALY_CHECK,
        asset=DAILY_USAGE,
        description="Warns when a project's credits on one of the run's days are far above its "
        "trailing norm (2.5x the median of the 28 days before, same kind of day).",
    ),
    _sane(DAILY_USAGE, "Unique grain, no negative values, and per day equal to job_runs."),
    _sane(WORKFLOW_RUNS, "One row per workflow_id, known statuses, no negative values."),
]


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
            top = cost.top_projects(conn, first, last, _TOP)
            yield dg.MaterializeResult(
                asset_key=DAILY_USAGE,
                metadata={
                    "dagster/row_count": count_rows(conn, daily_usage.NAME),
                    "dagster/column_schema": _schema(daily_usage.COLUMNS),
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
                _anomaly_result(found),
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
                    "dagster/column_schema": _schema(workflow_runs.COLUMNS),
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


def _anomaly_result(found: Sequence[anomalies.Anomaly]) -> RuleResult:
    names = sorted({a.project_name for a in found})
    return RuleResult(
        passed=not found,
        description=(
            "no project's credits far above its trailing norm"
            if not found
            else f"credits far above the trailing norm for {', '.join(names)}: "
            + "; ".join(a.describe() for a in found[:5])
            + ("; ..." if len(found) > 5 else "")
        ),
        metadata={
            "anomalies": len(found),
            "projects": ", ".join(names) or "none",
            "details": dg.MetadataValue.md(
                markdown_table(
                    ["day", "project", "organization", "credits", "norm"],
                    [
                        [
                            str(a.day),
                            a.project_name,
                            a.organization_name,
                            f"{a.credits:,.0f}",
                            f"{a.norm:,.0f}",
                        ]
                        for a in found[:_TOP]
                    ],
                )
            ),
        },
    )


# --------------------------------------------------------------------------------------------
# Unpartitioned roll-ups and the report
# --------------------------------------------------------------------------------------------

ROLLUP_SPECS = [
    _spec(
        WORKFLOW_PERFORMANCE,
        "Workflow runs, success rate, p50/p95 duration, throughput, credits and failed-run credits "
        "per month and for the last 30 days, with trends; all branches and the default branch.",
        performance.WORKFLOW_COLUMNS,
        [WORKFLOW_RUNS],
    ),
    _spec(
        JOB_PERFORMANCE,
        "The same metrics per job (JOB_RUN_SECONDS as duration).",
        performance.JOB_COLUMNS,
        [job_runs, WORKFLOW_RUNS],
    ),
    _spec(
        RIGHT_SIZING,
        "Jobs that stay well below their resource class (next smaller class, credits saved per "
        "month) and jobs at the CPU or RAM ceiling, over the last 30 days.",
        right_sizing.COLUMNS,
        [job_runs],
    ),
    _spec(
        CREDIT_COSTS,
        "Credits per day, project and team, priced with price_per_credit.csv.",
        cost.COST_COLUMNS,
        [DAILY_USAGE],
    ),
    _spec(
        TEAM_CHARGEBACK,
        "Monthly credits and cost per team and project (team_mapping.csv).",
        cost.CHARGEBACK_COLUMNS,
        [CREDIT_COSTS],
    ),
    _spec(
        CREDIT_FORECAST,
        "Month-to-date and projected month-end credits per organization and project "
        "(weekday-aware run rate), against budgets.csv.",
        forecast.COLUMNS,
        [DAILY_USAGE],
    ),
    _spec(
        USAGE_REPORT,
        "A self-contained HTML report: daily credits by project, p95 duration and success-rate "
        "trends, right-sizing, forecast against budget. Its path is in the metadata.",
        None,
        [
            DAILY_USAGE,
            WORKFLOW_RUNS,
            WORKFLOW_PERFORMANCE,
            RIGHT_SIZING,
            CREDIT_COSTS,
            TEAM_CHARGEBACK,
            CREDIT_FORECAST,
        ],
        kinds={"html", "duckdb"},
    ),
]
ROLLUP_CHECKS = [
    _sane(WORKFLOW_PERFORMANCE, "Unique grain, success rate in 0..1, p50 <= p95."),
    _sane(JOB_PERFORMANCE, "Unique grain, success rate in 0..1, p50 <= p95."),
    _sane(RIGHT_SIZING, "Unique grain, savings only for downsizes and never negative."),
    _sane(CREDIT_COSTS, "cost = credits x price, and credits add up to daily_usage."),
    _sane(TEAM_CHARGEBACK, "Unique grain, and credits add up to credit_costs."),
    _sane(CREDIT_FORECAST, "One row per scope, projection never below month-to-date."),
    dg.AssetCheckSpec(
        SELF_CONTAINED_CHECK,
        asset=USAGE_REPORT,
        description="The report is one file with its four charts, no script and no external URL.",
    ),
]


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
                yield _performance_result(
                    conn, WORKFLOW_PERFORMANCE, rows[performance.WORKFLOW_NAME], loaded
                )
                checks[(WORKFLOW_PERFORMANCE, SANE_CHECK)] = (
                    sanity.workflow_performance_sane(conn),
                    error,
                )
            if JOB_PERFORMANCE in selected:
                yield _performance_result(conn, JOB_PERFORMANCE, rows[performance.JOB_NAME], loaded)
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
                    "dagster/column_schema": _schema(right_sizing.COLUMNS),
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
                    "top_savings": dg.MetadataValue.md(_sizing_markdown(conn)),
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
                    "dagster/column_schema": _schema(cost.COST_COLUMNS),
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
                    "top_projects_by_cost": dg.MetadataValue.md(_cost_markdown(conn, loaded)),
                },
            )
            checks[(CREDIT_COSTS, SANE_CHECK)] = (sanity.credit_costs_sane(conn), error)

        if TEAM_CHARGEBACK in selected:
            rows_written = cost.refresh_chargeback(conn, run_id)
            yield dg.MaterializeResult(
                asset_key=TEAM_CHARGEBACK,
                metadata={
                    "dagster/row_count": rows_written,
                    "dagster/column_schema": _schema(cost.CHARGEBACK_COLUMNS),
                    "latest_month_by_team": dg.MetadataValue.md(_chargeback_markdown(conn)),
                },
            )
            checks[(TEAM_CHARGEBACK, SANE_CHECK)] = (sanity.team_chargeback_sane(conn), error)

        if CREDIT_FORECAST in selected:
            projection = forecast.refresh(conn, run_id, reference.budgets)
            yield dg.MaterializeResult(
                asset_key=CREDIT_FORECAST,
                metadata={
                    "dagster/row_count": projection.rows,
                    "dagster/column_schema": _schema(forecast.COLUMNS),
                    "as_of": str(projection.as_of),
                    "over_budget": ", ".join(projection.over_budget) or "none",
                    "budget_file": sources.get("budgets.csv", ""),
                    "forecast": dg.MetadataValue.md(_forecast_markdown(conn)),
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


def _performance_result(
    conn: duckdb.DuckDBPyConnection, key: dg.AssetKey, rows: int, loaded: tuple[date, date] | None
) -> dg.MaterializeResult:
    name = key.path[-1]
    columns = (
        performance.WORKFLOW_COLUMNS if key == WORKFLOW_PERFORMANCE else performance.JOB_COLUMNS
    )
    label = "workflow_name" if key == WORKFLOW_PERFORMANCE else "workflow_name || ' / ' || job_name"
    top = conn.execute(
        f"SELECT project_name, {label}, runs, success_rate, p95_duration_seconds, throughput,"
        f" total_credits, failed_run_credits FROM {table(name)}"
        " WHERE period = ? AND branch_scope = 'all' ORDER BY total_credits DESC LIMIT ?",
        [performance.ROLLING_LABEL, _TOP],
    ).fetchall()
    return dg.MaterializeResult(
        asset_key=key,
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": _schema(columns),
            "loaded_days": f"{loaded[0]} .. {loaded[1]}" if loaded else "none",
            "top_by_credits_last_30_days": dg.MetadataValue.md(
                markdown_table(
                    [
                        "project",
                        "name",
                        "runs",
                        "success",
                        "p95 s",
                        "runs/day",
                        "credits",
                        "failed credits",
                    ],
                    [
                        [
                            p,
                            n,
                            f"{r:,}",
                            _pct(sr),
                            _number(p95),
                            f"{t:.1f}",
                            f"{c:,.0f}",
                            f"{f:,.0f}",
                        ]
                        for p, n, r, sr, p95, t, c, f in top
                    ],
                )
            ),
        },
    )


def _sizing_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        f"SELECT project_name, job_name, resource_class, recommendation,"
        f" coalesce(suggested_class, ''), cpu_p95_pct, ram_p95_pct, est_credits_saved_per_month"
        f" FROM {right_sizing.RIGHT_SIZING}"
        f" WHERE recommendation IN ('{right_sizing.DOWNSIZE}', '{right_sizing.AT_CEILING}')"
        f" ORDER BY est_credits_saved_per_month DESC, runs DESC LIMIT ?",
        [_TOP],
    ).fetchall()
    return markdown_table(
        [
            "project",
            "job",
            "class",
            "finding",
            "suggested",
            "CPU p95 %",
            "RAM p95 %",
            "credits saved / month",
        ],
        [
            [p, j, c, r, s, _number(cpu), _number(ram), f"{saved:,.0f}"]
            for p, j, c, r, s, cpu, ram, saved in rows
        ],
    )


def _cost_markdown(conn: duckdb.DuckDBPyConnection, loaded: tuple[date, date] | None) -> str:
    if loaded is None:
        return markdown_table(["project"], [])
    first = max(loaded[0], loaded[1] - timedelta(days=29))
    return markdown_table(
        ["project (last 30 days)", "team", "credits", "cost"],
        [
            [
                p.project,
                p.team,
                f"{p.credits:,.0f}",
                f"{p.cost:,.2f} {p.currency}" if p.cost is not None else "no price",
            ]
            for p in cost.top_projects(conn, first, loaded[1], _TOP)
        ],
    )


def _chargeback_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        f"SELECT month, team, sum(total_credits) AS credits, sum(cost), any_value(currency)"
        f" FROM {cost.TEAM_CHARGEBACK}"
        f" WHERE month = (SELECT max(month) FROM {cost.TEAM_CHARGEBACK})"
        " GROUP BY month, team ORDER BY credits DESC LIMIT ?",
        [_TOP],
    ).fetchall()
    return markdown_table(
        ["month", "team", "credits", "cost"],
        [
            [f"{m:%Y-%m}", t, f"{c:,.0f}", f"{v:,.2f} {cur}" if v is not None else "no price"]
            for m, t, c, v, cur in rows
        ],
    )


def _forecast_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        f"SELECT scope, organization_name, coalesce(project_name, ''), mtd_credits,"
        f" projected_month_credits, budget_credits, budget_status FROM {forecast.CREDIT_FORECAST}"
        " ORDER BY scope = 'project', projected_month_credits DESC LIMIT ?",
        [_TOP + 1],
    ).fetchall()
    return markdown_table(
        ["scope", "organization", "project", "month to date", "projected", "budget", "status"],
        [
            [s, o, p, f"{m:,.0f}", f"{pr:,.0f}", f"{b:,.0f}" if b is not None else "", st]
            for s, o, p, m, pr, b, st in rows
        ],
    )


def _check_results(
    context: dg.AssetExecutionContext,
    checks: Mapping[tuple[dg.AssetKey, str], tuple[RuleResult, dg.AssetCheckSeverity]],
) -> Iterator[dg.AssetCheckResult]:
    """The results of the checks this run selected."""
    selected = context.selected_asset_check_keys
    for (key, name), (result, severity) in checks.items():
        if dg.AssetCheckKey(key, name) in selected:
            yield check_result(key, name, result, severity)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table (what the UI renders for MetadataValue.md)."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    if not rows:
        lines.append("| " + " | ".join(["(none)"] + [""] * (len(headers) - 1)) + " |")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


insights_automation_sensor = dg.AutomationConditionSensorDefinition(
    "insights_automation_sensor",
    target=dg.AssetSelection.assets(insights_rollups),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description=f"Refreshes the {SCHEMA} roll-ups and report after a run that updated their inputs "
    "without them (the sensor's download runs refresh them themselves).",
)
