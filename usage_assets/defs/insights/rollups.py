"""The registry of roll-ups `insights_rollups` loops over: for each table, how to rebuild it (and
what its materialization shows), and its check.

The performance tables are refreshed incrementally (only the periods whose inputs changed, see
`usage_assets.insights.rollup_state`); the others are rebuilt whole, their inputs being bounded
windows or small daily aggregates. `RollupRun.full_rebuild` makes the incremental ones recompute
everything.

Adding a roll-up means a module in `usage_assets/insights/`, its spec in `specs.py`, and one entry
here; the op itself does not change. Entries are in dependency order (costs before chargeback,
everything before the report), which is the order one run rebuilds them in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from usage_assets.defs.insights.metadata import (
    chargeback_markdown,
    cost_markdown,
    forecast_markdown,
    performance_metadata,
    rates_markdown,
    sizing_markdown,
    table_schema,
)
from usage_assets.defs.insights.specs import (
    CREDIT_COSTS,
    CREDIT_FORECAST,
    FILE_RATE_CHECK,
    JOB_PERFORMANCE,
    RESOURCE_CLASS_RATES,
    RIGHT_SIZING,
    SANE_CHECK,
    SELF_CONTAINED_CHECK,
    TEAM_CHARGEBACK,
    USAGE_REPORT,
    WORKFLOW_PERFORMANCE,
)
from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.insights import (
    cost,
    forecast,
    performance,
    report,
    resource_class_rates,
    right_sizing,
    sanity,
)
from usage_assets.insights.reference_data import ReferenceData


@dataclass(frozen=True)
class RollupRun:
    """What every roll-up's refresh and check get: one connection, one run, one reading of the
    reference files."""

    conn: duckdb.DuckDBPyConnection
    run_id: str
    reference: ReferenceData
    loaded: tuple[date, date] | None  # first and last loaded usage_date
    report_path: Path
    log: Any  # the op's logger: refreshes warn about gaps in the reference files
    # Recompute every period of the incremental roll-ups, ignoring their state (the op's config).
    full_rebuild: bool = False

    def source(self, file_name: str) -> str:
        """Where a reference file was read from (shown in the metadata)."""
        return dict(self.reference.sources).get(file_name, "")


@dataclass(frozen=True)
class Rollup:
    key: dg.AssetKey
    refresh: Callable[[RollupRun], dict[str, Any]]  # rebuilds the table, returns its metadata
    check: Callable[[RollupRun], RuleResult]
    check_name: str = SANE_CHECK
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


def _performance(name: str) -> Callable[[RollupRun], dict[str, Any]]:
    def refresh(run: RollupRun) -> dict[str, Any]:
        refreshed = performance.refresh(
            run.conn,
            run.loaded,
            run.run_id,
            default_branches=run.reference.default_branches,
            which=[name],
            full_rebuild=run.full_rebuild,
        )[name]
        if refreshed.full_rebuild and refreshed.reason != "requested":
            run.log.info(f"{name}: every period recomputed ({refreshed.reason})")
        return performance_metadata(run.conn, name, refreshed, run.loaded)

    return refresh


def _resource_class_rates(run: RollupRun) -> dict[str, Any]:
    rates = resource_class_rates.refresh(
        run.conn, run.loaded, run.run_id, run.reference.resource_classes
    )
    if rates.disagreeing:
        run.log.warning(
            "Fitted credits per minute differ from resource_classes.csv (the fitted rates are "
            "used): " + "; ".join(rates.disagreeing)
        )
    return {
        "dagster/row_count": rates.rows,
        "dagster/column_schema": table_schema(resource_class_rates.COLUMNS),
        "window": f"{rates.window[0]} .. {rates.window[1]}" if rates.window else "none",
        "classes_fitted": rates.fitted,
        "disagreeing_with_file": "; ".join(rates.disagreeing) or "none",
        "resource_classes_file": run.source("resource_classes.csv"),
        "rates": dg.MetadataValue.md(rates_markdown(run.conn)),
    }


def _right_sizing(run: RollupRun) -> dict[str, Any]:
    price = run.reference.price_on(run.loaded[1]) if run.loaded else None
    sizing = right_sizing.refresh(
        run.conn, run.loaded, run.run_id, run.reference.resource_classes, price
    )
    if sizing.unknown_classes:
        run.log.warning(
            "Resource classes not in resource_classes.csv (add them to size these jobs): "
            + ", ".join(sizing.unknown_classes)
        )
    return {
        "dagster/row_count": sizing.rows,
        "dagster/column_schema": table_schema(right_sizing.COLUMNS),
        "window": f"{sizing.window[0]} .. {sizing.window[1]}" if sizing.window else "none",
        "downsize_candidates": sizing.downsize_candidates,
        "at_ceiling": sizing.at_ceiling,
        "est_credits_saved_per_month": dg.MetadataValue.float(sizing.est_credits_saved_per_month),
        "unknown_resource_classes": ", ".join(sizing.unknown_classes) or "none",
        "retired_resource_classes": ", ".join(sizing.retired_classes) or "none",
        "resource_classes_file": run.source("resource_classes.csv"),
        "top_savings": dg.MetadataValue.md(sizing_markdown(run.conn)),
    }


def _credit_costs(run: RollupRun) -> dict[str, Any]:
    costs = cost.refresh_costs(run.conn, run.run_id, run.reference.prices, run.reference.teams)
    if costs.days_without_price:
        run.log.warning(
            f"{costs.days_without_price} day(s) have no price in price_per_credit.csv; "
            "their cost is empty"
        )
    return {
        "dagster/row_count": costs.rows,
        "dagster/column_schema": table_schema(cost.COST_COLUMNS),
        # Job credits (in the project lines) + seat credits (the org-level line) = all credits.
        "job_credits": dg.MetadataValue.float(costs.job_credits),
        "seat_credits": dg.MetadataValue.float(costs.seat_credits),
        "total_credits": dg.MetadataValue.float(costs.total_credits),
        "total_cost": ", ".join(
            f"{value:,.2f} {currency}" for currency, value in costs.total_cost_by_currency.items()
        )
        or "no price",
        "days_without_price": costs.days_without_price,
        "unassigned_projects": ", ".join(costs.unassigned_projects) or "none",
        "price_file": run.source("price_per_credit.csv"),
        "team_file": run.source("team_mapping.csv"),
        "top_projects_by_cost": dg.MetadataValue.md(cost_markdown(run.conn, run.loaded)),
    }


def _team_chargeback(run: RollupRun) -> dict[str, Any]:
    return {
        "dagster/row_count": cost.refresh_chargeback(run.conn, run.run_id),
        "dagster/column_schema": table_schema(cost.CHARGEBACK_COLUMNS),
        "latest_month_by_team": dg.MetadataValue.md(chargeback_markdown(run.conn)),
    }


def _credit_forecast(run: RollupRun) -> dict[str, Any]:
    projection = forecast.refresh(run.conn, run.run_id, run.reference.budgets)
    return {
        "dagster/row_count": projection.rows,
        "dagster/column_schema": table_schema(forecast.COLUMNS),
        "as_of": str(projection.as_of),
        "over_budget": ", ".join(projection.over_budget) or "none",
        "budget_file": run.source("budgets.csv"),
        "forecast": dg.MetadataValue.md(forecast_markdown(run.conn)),
    }


def _usage_report(run: RollupRun) -> dict[str, Any]:
    data = report.collect(run.conn)
    size = report.write(run.report_path, report.render(data))
    return {
        "report_path": dg.MetadataValue.path(str(run.report_path)),
        "bytes": size,
        "days": len(data.days),
        "first_day": str(data.first_day),
        "last_day": str(data.last_day),
    }


ROLLUPS: list[Rollup] = [
    Rollup(
        WORKFLOW_PERFORMANCE,
        _performance(performance.WORKFLOW_NAME),
        lambda run: sanity.workflow_performance_sane(run.conn),
    ),
    Rollup(
        JOB_PERFORMANCE,
        _performance(performance.JOB_NAME),
        lambda run: sanity.job_performance_sane(run.conn),
    ),
    Rollup(
        RESOURCE_CLASS_RATES,
        _resource_class_rates,
        lambda run: resource_class_rates.file_rate_check(run.conn),
        check_name=FILE_RATE_CHECK,
        severity=dg.AssetCheckSeverity.WARN,
    ),
    Rollup(RIGHT_SIZING, _right_sizing, lambda run: sanity.right_sizing_sane(run.conn)),
    Rollup(CREDIT_COSTS, _credit_costs, lambda run: sanity.credit_costs_sane(run.conn)),
    Rollup(TEAM_CHARGEBACK, _team_chargeback, lambda run: sanity.team_chargeback_sane(run.conn)),
    Rollup(CREDIT_FORECAST, _credit_forecast, lambda run: sanity.credit_forecast_sane(run.conn)),
    Rollup(
        USAGE_REPORT,
        _usage_report,
        lambda run: sanity.report_self_contained(run.report_path),
        check_name=SELF_CONTAINED_CHECK,
    ),
]
