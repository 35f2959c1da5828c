"""`circleci_insights.credit_forecast`: month-to-date and projected month-end credits.

For each organization and each project, as of the last loaded day (`as_of`, normally yesterday),
on **job credits** (total minus seat credits, `vocabulary.JOB_CREDITS_SQL`):

* `mtd_credits`: job credits from the first of as_of's month through as_of.
* The run rate is **weekday-aware**: CI burns far less on weekends, so a flat daily average would
  over-forecast a month ending in weekends and under-forecast one ending in weekdays. For each day
  of the week, the rate is the average credits of that weekday over the trailing 28 loaded days
  (four of each weekday once 28 days are loaded; days with no usage count as zero). A weekday with
  no sample yet (less than a week loaded) takes the average of all trailing days.
* `projected_month_credits` = mtd_credits + the rate of each remaining day's weekday, summed over
  the days after as_of to the month's end.
* Seat fees (USER_CREDITS, 25,000 per active user) are a once-per-billing-cycle deduction, not a
  daily run rate: extrapolating a seat day by its weekday would invent seats. So they are in no
  projection. An organization's row shows them as a separate known line, `mtd_seat_credits`: the
  seat credits the export carries from the first of the month through as_of (null on project
  rows, which never carry seats). The org's month so far in all credits is mtd_credits +
  mtd_seat_credits.
* Against `budgets.csv` (optional): `budget_status` is `over_budget` when the projection (or what is
  already spent) exceeds the budget, `on_track` otherwise, `no_budget` without one. Budgets, the
  organization's too, are compared with **job credits only**: that is what CI usage moves, and a
  seat deduction landing on one day would otherwise flip an org to over budget overnight. A budget
  meant for the whole plan should leave the seat fees out of its figure.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from usage_assets.circleci.vocabulary import JOB_CREDITS_SQL, SEAT_CREDITS_SQL
from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.insights.common import create_rebuilt_table, replace_all_rows, table
from usage_assets.insights.daily_usage import DAILY_USAGE
from usage_assets.insights.reference_data import Budget

NAME = "credit_forecast"
CREDIT_FORECAST = table(NAME)
TRAILING_DAYS = 28

OVER_BUDGET = "over_budget"
ON_TRACK = "on_track"
NO_BUDGET = "no_budget"

COLUMNS: dict[str, str] = {
    "as_of": "DATE",
    "month": "DATE",
    "scope": "VARCHAR",  # "organization" or "project"
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "mtd_credits": "DOUBLE",  # job credits
    "mtd_seat_credits": "DOUBLE",  # organization rows only: seat fees this month, not projected
    "days_elapsed": "BIGINT",
    "days_in_month": "BIGINT",
    "trailing_days": "BIGINT",
    "projected_remaining_credits": "DOUBLE",
    "projected_month_credits": "DOUBLE",
    "budget_credits": "DOUBLE",
    "projected_pct_of_budget": "DOUBLE",
    "budget_status": "VARCHAR",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class MonthForecast:
    month: date
    mtd_credits: float
    days_elapsed: int
    days_in_month: int
    trailing_days: int
    rate_by_weekday: tuple[float, ...]  # Monday .. Sunday
    projected_remaining: float

    @property
    def projected_total(self) -> float:
        return self.mtd_credits + self.projected_remaining


def forecast_month(
    daily_credits: Mapping[date, float], as_of: date, first_loaded: date
) -> MonthForecast:
    """The projection above for one series of daily credits (days absent from the mapping but
    inside the loaded range count as zero)."""
    month = as_of.replace(day=1)
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    mtd_start = max(month, first_loaded)
    mtd = sum(
        daily_credits.get(mtd_start + timedelta(days=i), 0.0)
        for i in range((as_of - mtd_start).days + 1)
    )
    trailing_start = max(first_loaded, as_of - timedelta(days=TRAILING_DAYS - 1))
    trailing = [
        trailing_start + timedelta(days=i) for i in range((as_of - trailing_start).days + 1)
    ]
    overall = sum(daily_credits.get(d, 0.0) for d in trailing) / len(trailing)
    rates = []
    for weekday in range(7):
        samples = [daily_credits.get(d, 0.0) for d in trailing if d.weekday() == weekday]
        rates.append(sum(samples) / len(samples) if samples else overall)
    month_end = month.replace(day=days_in_month)
    remaining = [as_of + timedelta(days=i) for i in range(1, (month_end - as_of).days + 1)]
    return MonthForecast(
        month=month,
        mtd_credits=mtd,
        days_elapsed=as_of.day,
        days_in_month=days_in_month,
        trailing_days=len(trailing),
        rate_by_weekday=tuple(rates),
        projected_remaining=sum(rates[d.weekday()] for d in remaining),
    )


def budget_status(projected: float, mtd: float, budget: float | None) -> str:
    if budget is None:
        return NO_BUDGET
    return OVER_BUDGET if max(projected, mtd) > budget else ON_TRACK


def find_budget(
    budgets: Sequence[Budget],
    month: date,
    organization_id: str,
    organization_name: str,
    project_name: str | None,
) -> float | None:
    for budget in budgets:
        if (
            budget.month == month
            and budget.organization in (organization_id, organization_name)
            and budget.project_name == project_name
        ):
            return budget.credits
    return None


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    create_rebuilt_table(conn, NAME, COLUMNS)


@dataclass(frozen=True)
class ForecastResult:
    rows: int
    as_of: date | None
    over_budget: list[str]


def refresh(
    conn: duckdb.DuckDBPyConnection, run_id: str, budgets: Sequence[Budget]
) -> ForecastResult:
    ensure_table(conn)
    first_loaded, as_of = fetch_one(
        conn, f"SELECT min(usage_date), max(usage_date) FROM {DAILY_USAGE}"
    )
    records: list[list[object]] = []
    over: list[str] = []
    if as_of is not None:
        since = min(as_of.replace(day=1), as_of - timedelta(days=TRAILING_DAYS - 1))
        series: dict[tuple[str, str, str | None, str | None], dict[date, float]] = {}
        seats_mtd: dict[str, float] = {}
        for org_id, org_name, project_id, project_name, day, credits, seats in conn.execute(
            f"""
            SELECT organization_id, any_value(organization_name), project_id,
                any_value(project_name), usage_date, sum({JOB_CREDITS_SQL}),
                sum({SEAT_CREDITS_SQL})
            FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?
            GROUP BY GROUPING SETS (
                (organization_id, usage_date), (organization_id, project_id, usage_date))
            """,
            [since, as_of],
        ).fetchall():
            key = (org_id, org_name, project_id, project_name if project_id is not None else None)
            series.setdefault(key, {})[day] = float(credits)
            if project_id is None and day >= as_of.replace(day=1):
                seats_mtd[org_id] = seats_mtd.get(org_id, 0.0) + float(seats)
        # Organizations first, then their projects by name.
        for key in sorted(series, key=lambda k: (k[1] or "", k[2] is not None, k[3] or "")):
            org_id, org_name, project_id, project_name = key
            result = forecast_month(series[key], as_of, first_loaded)
            budget = find_budget(budgets, result.month, org_id, org_name, project_name)
            status = budget_status(result.projected_total, result.mtd_credits, budget)
            if status == OVER_BUDGET:
                over.append(f"{org_name}/{project_name}" if project_name else str(org_name))
            records.append(
                [
                    as_of,
                    result.month,
                    "project" if project_id is not None else "organization",
                    org_id,
                    org_name,
                    project_id,
                    project_name,
                    result.mtd_credits,
                    None if project_id is not None else seats_mtd.get(org_id, 0.0),
                    result.days_elapsed,
                    result.days_in_month,
                    result.trailing_days,
                    result.projected_remaining,
                    result.projected_total,
                    budget,
                    result.projected_total / budget if budget else None,
                    status,
                    run_id,
                ]
            )
    replace_all_rows(conn, NAME, list(COLUMNS), records)
    return ForecastResult(len(records), as_of, over)
