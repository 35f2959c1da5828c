"""The `circleci_insights` asset and check specs: keys, descriptions, table schemas, lineage.

Which table exists, what it depends on and what its checks promise live here; how a table is
written lives in `usage_assets.insights`, and the ops that write them in `assets.py`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from usage_assets.defs.constants import INSIGHTS_GROUP, OWNERS
from usage_assets.defs.freshness import insights_freshness_policy
from usage_assets.defs.insights.automation import ROLLUP_AUTOMATION
from usage_assets.defs.insights.metadata import table_schema
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.insights import (
    cost,
    daily_usage,
    default_branches,
    definitions,
    forecast,
    performance,
    resource_class_rates,
    right_sizing,
    workflow_runs,
)
from usage_assets.insights.common import table

DAILY_USAGE = dg.AssetKey(daily_usage.NAME)
WORKFLOW_RUNS = dg.AssetKey(workflow_runs.NAME)
WORKFLOW_PERFORMANCE = dg.AssetKey(performance.WORKFLOW_NAME)
JOB_PERFORMANCE = dg.AssetKey(performance.JOB_NAME)
PROJECT_DEFAULT_BRANCHES = dg.AssetKey(default_branches.NAME)  # its asset: default_branches.py
RESOURCE_CLASS_RATES = dg.AssetKey(resource_class_rates.NAME)
RIGHT_SIZING = dg.AssetKey(right_sizing.NAME)
CREDIT_COSTS = dg.AssetKey(cost.COSTS_NAME)
TEAM_CHARGEBACK = dg.AssetKey(cost.CHARGEBACK_NAME)
CREDIT_FORECAST = dg.AssetKey(forecast.NAME)
USAGE_REPORT = dg.AssetKey("usage_report")

COVERAGE_CHECK = "no_missing_days"
ANOMALY_CHECK = "no_credit_anomalies"
SANE_CHECK = "sane"
SELF_CONTAINED_CHECK = "self_contained"
FILE_RATE_CHECK = resource_class_rates.CHECK_NAME

# What a reader opens each morning: the report and the month-end forecast must have been rebuilt
# by the deadline (every load rebuilds them). Unpartitioned, so Dagster's asset-level freshness
# policy is exact for them (unlike for the daily tables; see usage_assets.defs.freshness).
DAILY_READ_FRESHNESS = insights_freshness_policy()


def _spec(
    key: dg.AssetKey,
    description: str,
    columns: Mapping[str, str] | None,
    deps: Sequence[dg.AssetKey | dg.AssetsDefinition],
    *,
    kinds: set[str] | None = None,
    partitioned: bool = False,
    freshness_policy: dg.FreshnessPolicy | None = None,
    column_descriptions: Mapping[str, str] | None = None,
) -> dg.AssetSpec:
    metadata: dict[str, Any] = {}
    if columns is not None:
        metadata["dagster/table_name"] = table(key.path[-1])
        metadata["dagster/column_schema"] = table_schema(columns, column_descriptions)
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
        freshness_policy=freshness_policy,
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


ROLLUP_SPECS = [
    _spec(
        WORKFLOW_PERFORMANCE,
        "Workflow runs, success rate, p50/p95 duration, throughput, credits (compute + DLC as in "
        "Insights, and all eight components) per month and for the last 30 days, with trends; all "
        "branches and the default branch. Each column's definition is in its description.",
        performance.WORKFLOW_COLUMNS,
        [WORKFLOW_RUNS, PROJECT_DEFAULT_BRANCHES],
        column_descriptions=definitions.column_descriptions(),
    ),
    _spec(
        JOB_PERFORMANCE,
        "The same metrics per job (JOB_RUN_SECONDS as duration).",
        performance.JOB_COLUMNS,
        [job_runs, WORKFLOW_RUNS, PROJECT_DEFAULT_BRANCHES],
        column_descriptions=definitions.column_descriptions(),
    ),
    _spec(
        RESOURCE_CLASS_RATES,
        "Credits per minute per executor and resource class, fitted from the last 90 loaded days "
        "(robust to rounding, parallelism and outliers), beside resource_classes.csv's rate, and "
        "which one the insights use.",
        resource_class_rates.COLUMNS,
        [job_runs],
    ),
    _spec(
        RIGHT_SIZING,
        "Jobs that stay well below their resource class (next smaller class, credits saved per "
        "month at the fitted rates) and jobs at the CPU or RAM ceiling, over the last 30 days.",
        right_sizing.COLUMNS,
        [job_runs, RESOURCE_CLASS_RATES],
    ),
    _spec(
        CREDIT_COSTS,
        "Estimated cost (price_per_credit.csv) of job credits per day, project and team; seat "
        "fees as an org-level line. Estimates: CircleCI's Plan Usage page is the billing truth.",
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
        "Month-to-date and projected month-end job credits per organization and project "
        "(weekday-aware run rate), against budgets.csv; the org's seat fees so far apart.",
        forecast.COLUMNS,
        [DAILY_USAGE],
        freshness_policy=DAILY_READ_FRESHNESS,
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
            RESOURCE_CLASS_RATES,
            RIGHT_SIZING,
            CREDIT_COSTS,
            TEAM_CHARGEBACK,
            CREDIT_FORECAST,
        ],
        kinds={"html", "duckdb"},
        freshness_policy=DAILY_READ_FRESHNESS,
    ),
]
ROLLUP_CHECKS = [
    _sane(WORKFLOW_PERFORMANCE, "Unique grain, success rate in 0..1, p50 <= p95."),
    _sane(JOB_PERFORMANCE, "Unique grain, success rate in 0..1, p50 <= p95."),
    dg.AssetCheckSpec(
        FILE_RATE_CHECK,
        asset=RESOURCE_CLASS_RATES,
        description="Warns, naming each class, where the fitted rate differs from "
        "resource_classes.csv's (by more than 1 credit/min and 5 %), the file has no rate, or "
        "the file lacks the class.",
    ),
    _sane(RIGHT_SIZING, "Unique grain, savings only for downsizes and never negative."),
    _sane(
        CREDIT_COSTS,
        "cost = credits x price; job plus seat-fee lines add up to daily_usage's credits.",
    ),
    _sane(TEAM_CHARGEBACK, "Unique grain, and credits add up to credit_costs."),
    _sane(CREDIT_FORECAST, "One row per scope, projection never below month-to-date."),
    dg.AssetCheckSpec(
        SELF_CONTAINED_CHECK,
        asset=USAGE_REPORT,
        description="The report is one file with its four charts, no script and no external URL.",
    ),
]
