"""`circleci_insights.right_sizing`: which jobs could run on a smaller class, and which are starved.

For each job (organization, project, job name, executor, resource class) over the last 30 loaded
days, from its runs that reported utilisation (CircleCI samples it; short runs and some executors
report none):

* `cpu_p95_pct`: the 95th percentile, across runs, of each run's *median* CPU. The median, because
  a build that peaks at 100 % for a second does not need the cores the rest of the time.
* `ram_p95_pct`: the 95th percentile, across runs, of each run's *maximum* RAM. The maximum,
  because running out of memory fails the job however briefly it happens.

Then, with the class's size from `resource_classes.csv` (a blank executor: the class looked up
by name, see `resource_class_rates`) and each class's rate from `resource_class_rates` (fitted
from the export, the file's rate where too few runs fit; `credits_per_minute` is the rate used):

* `downsize`: a next smaller class exists and on it both would stay at or under 80 % (the figures
  scaled by the ratio of vCPUs and of RAM). `est_credits_saved_per_month` is the job's compute
  credits in the window times (1 - smaller rate / current rate), scaled to 30 days, never below 0.
  It assumes the job takes as long on the smaller class, which holds when it was idle on the
  larger one.
* `at_ceiling`: either figure is 95 % or more: the job is starved of CPU or close to running out of
  memory; `suggested_class` is the next larger class (the class whose next smaller one is this).
* `ok`: neither.
* `insufficient_data`: fewer than 5 runs with utilisation in the window.
* `retired_class`: CircleCI retired the class (`end_of_life` in the file): move the job to a
  current class. A retired class is never suggested, as smaller or as larger class.
* `not_sized`: the class has no size in the file (self-hosted runners).
* `unknown_class`: the executor and class are not in the file: add them (they are reported). The
  row still shows the job's runs, compute credits, CPU and RAM p95 and the fitted rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights import resource_class_rates
from usage_assets.insights.common import create_rebuilt_table, replace_all_rows, table
from usage_assets.insights.reference_data import PricePeriod, ResourceClass
from usage_assets.insights.resource_class_rates import ClassRate, ResourceClassCatalog, rate_used

NAME = "right_sizing"
RIGHT_SIZING = table(NAME)

WINDOW_DAYS = 30
MIN_RUNS_WITH_UTILIZATION = 5
HEADROOM_PCT = 80.0
CEILING_PCT = 95.0
DAYS_PER_MONTH = 30

DOWNSIZE = "downsize"
AT_CEILING = "at_ceiling"
OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"
NOT_SIZED = "not_sized"
UNKNOWN_CLASS = "unknown_class"
RETIRED_CLASS = "retired_class"

COLUMNS: dict[str, str] = {
    "window_start": "DATE",
    "window_end": "DATE",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "job_name": "VARCHAR",
    "executor": "VARCHAR",
    "resource_class": "VARCHAR",
    "runs": "BIGINT",
    "runs_with_utilization": "BIGINT",
    "cpu_p95_pct": "DOUBLE",
    "ram_p95_pct": "DOUBLE",
    "vcpus": "DOUBLE",
    "ram_gib": "DOUBLE",
    "credits_per_minute": "DOUBLE",
    "compute_credits": "DOUBLE",
    "recommendation": "VARCHAR",
    "ceiling": "VARCHAR",
    "suggested_class": "VARCHAR",
    "projected_cpu_pct": "DOUBLE",
    "projected_ram_pct": "DOUBLE",
    "est_credits_saved_per_month": "DOUBLE",
    "est_cost_saved_per_month": "DOUBLE",
    "currency": "VARCHAR",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class JobUsage:
    """One job's runs in the window, as measured."""

    organization_id: str
    organization_name: str
    project_id: str
    project_name: str
    job_name: str
    executor: str
    resource_class: str
    runs: int
    runs_with_utilization: int
    cpu_p95_pct: float | None
    ram_p95_pct: float | None
    compute_credits: float


@dataclass(frozen=True)
class Recommendation:
    recommendation: str
    ceiling: str | None = None  # "cpu", "ram" or "cpu+ram" when at the ceiling
    suggested_class: str | None = None
    projected_cpu_pct: float | None = None
    projected_ram_pct: float | None = None
    est_credits_saved_per_month: float = 0.0


def recommend(
    usage: JobUsage,
    catalog: ResourceClassCatalog,
    window_days: int,
    rates: Mapping[tuple[str, str], ClassRate] | None = None,
) -> tuple[Recommendation, ResourceClass | None]:
    """The rule in the module docstring, for one job; `rates` is resource_class_rates by
    (executor, class) (none: the file's rates)."""
    rates = rates or {}
    fitted = rates.get((usage.executor, usage.resource_class))
    current = catalog.find(
        usage.executor, usage.resource_class, fitted.fitted_rate if fitted else None
    )
    if current is None:
        return Recommendation(UNKNOWN_CLASS), None
    if current.retired:
        return Recommendation(RETIRED_CLASS), current
    if current.vcpus is None or current.ram_gib is None:
        return Recommendation(NOT_SIZED), current
    if (
        usage.runs_with_utilization < MIN_RUNS_WITH_UTILIZATION
        or usage.cpu_p95_pct is None
        or usage.ram_p95_pct is None
    ):
        return Recommendation(INSUFFICIENT_DATA), current
    cpu, ram = usage.cpu_p95_pct, usage.ram_p95_pct
    if cpu >= CEILING_PCT or ram >= CEILING_PCT:
        ceiling = "+".join(
            name for name, value in (("cpu", cpu), ("ram", ram)) if value >= CEILING_PCT
        )
        larger = catalog.larger(current)
        return Recommendation(
            AT_CEILING, ceiling=ceiling, suggested_class=larger.resource_class if larger else None
        ), current
    smaller = catalog.smaller(current)
    if smaller is not None and smaller.vcpus is not None and smaller.ram_gib is not None:
        projected_cpu = cpu * current.vcpus / smaller.vcpus
        projected_ram = ram * current.ram_gib / smaller.ram_gib
        if projected_cpu <= HEADROOM_PCT and projected_ram <= HEADROOM_PCT:
            saved = 0.0
            current_rate = rate_used(rates, usage.executor, current)
            smaller_rate = rate_used(rates, usage.executor, smaller)
            if smaller_rate is not None and current_rate:
                saving_share = max(0.0, 1 - smaller_rate / current_rate)
                saved = usage.compute_credits * saving_share * DAYS_PER_MONTH / window_days
            return Recommendation(
                DOWNSIZE,
                suggested_class=smaller.resource_class,
                projected_cpu_pct=projected_cpu,
                projected_ram_pct=projected_ram,
                est_credits_saved_per_month=saved,
            ), current
    return Recommendation(OK), current


def _job_usage(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> list[JobUsage]:
    rows = conn.execute(
        f"""
        SELECT organization_id, any_value(organization_name), project_id,
            any_value(project_name), job_name, executor, resource_class, count(*),
            count(*) FILTER (WHERE median_cpu_utilization_pct IS NOT NULL
                AND max_ram_utilization_pct IS NOT NULL),
            quantile_cont(median_cpu_utilization_pct, 0.95) FILTER (
                WHERE median_cpu_utilization_pct IS NOT NULL AND max_ram_utilization_pct IS NOT NULL),
            quantile_cont(max_ram_utilization_pct, 0.95) FILTER (
                WHERE median_cpu_utilization_pct IS NOT NULL AND max_ram_utilization_pct IS NOT NULL),
            coalesce(sum(compute_credits), 0)
        FROM {JOB_RUNS}
        WHERE usage_date BETWEEN ? AND ? AND job_name IS NOT NULL
            AND resource_class IS NOT NULL AND job_run_seconds IS NOT NULL
        GROUP BY organization_id, project_id, job_name, executor, resource_class
        ORDER BY organization_id, project_id, job_name, executor, resource_class
        """,
        [first, last],
    ).fetchall()
    return [
        JobUsage(
            str(org_id),
            str(org_name),
            str(project_id),
            str(project_name),
            str(job),
            str(executor or ""),
            str(rc),
            int(runs),
            int(with_util),
            None if cpu is None else float(cpu),
            None if ram is None else float(ram),
            float(credits),
        )
        for org_id, org_name, project_id, project_name, job, executor, rc, runs, with_util, cpu, ram, credits in rows
    ]


@dataclass(frozen=True)
class RightSizingResult:
    rows: int
    window: tuple[date, date] | None
    unknown_classes: list[str]  # "executor resource_class"
    retired_classes: list[str]
    downsize_candidates: int
    at_ceiling: int
    est_credits_saved_per_month: float


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    create_rebuilt_table(conn, NAME, COLUMNS)


def refresh(
    conn: duckdb.DuckDBPyConnection,
    loaded: tuple[date, date] | None,
    run_id: str,
    classes: Sequence[ResourceClass],
    price: PricePeriod | None,
) -> RightSizingResult:
    """Rebuild the table over the last WINDOW_DAYS loaded days; `price` converts the savings to
    money (the price valid on the window's last day; None leaves the cost empty)."""
    ensure_table(conn)
    catalog = ResourceClassCatalog(classes)
    rates = resource_class_rates.read(conn)
    window = None
    records: list[list[object]] = []
    unknown: dict[str, None] = {}
    retired: dict[str, None] = {}
    if loaded is not None:
        first = max(loaded[0], loaded[1] - timedelta(days=WINDOW_DAYS - 1))
        window = (first, loaded[1])
        window_days = (window[1] - window[0]).days + 1
        for usage in _job_usage(conn, *window):
            advice, spec = recommend(usage, catalog, window_days, rates)
            if advice.recommendation == UNKNOWN_CLASS:
                unknown[f"{usage.executor} {usage.resource_class}"] = None
            if advice.recommendation == RETIRED_CLASS:
                retired[f"{usage.executor} {usage.resource_class}"] = None
            fitted = rates.get((usage.executor, usage.resource_class))
            rate = rate_used(rates, usage.executor, spec) if spec else None
            if spec is None and fitted is not None:
                rate = fitted.rate_used  # a class the file lacks: what the export says it costs
            saved = advice.est_credits_saved_per_month
            records.append(
                [
                    window[0],
                    window[1],
                    usage.organization_id,
                    usage.organization_name,
                    usage.project_id,
                    usage.project_name,
                    usage.job_name,
                    usage.executor,
                    usage.resource_class,
                    usage.runs,
                    usage.runs_with_utilization,
                    usage.cpu_p95_pct,
                    usage.ram_p95_pct,
                    spec.vcpus if spec else None,
                    spec.ram_gib if spec else None,
                    rate,
                    usage.compute_credits,
                    advice.recommendation,
                    advice.ceiling,
                    advice.suggested_class,
                    advice.projected_cpu_pct,
                    advice.projected_ram_pct,
                    saved,
                    saved * price.price_per_credit if price else None,
                    price.currency if price else None,
                    run_id,
                ]
            )
    replace_all_rows(conn, NAME, list(COLUMNS), records)
    downsize, ceiling, saved_total = fetch_one(
        conn,
        f"SELECT count(*) FILTER (WHERE recommendation = '{DOWNSIZE}'),"
        f" count(*) FILTER (WHERE recommendation = '{AT_CEILING}'),"
        f" coalesce(sum(est_credits_saved_per_month), 0) FROM {RIGHT_SIZING}",
    )
    return RightSizingResult(
        rows=len(records),
        window=window,
        unknown_classes=sorted(unknown),
        retired_classes=sorted(retired),
        downsize_candidates=int(downsize),
        at_ceiling=int(ceiling),
        est_credits_saved_per_month=float(saved_total),
    )
