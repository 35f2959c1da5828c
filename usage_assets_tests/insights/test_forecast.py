"""Month-end forecast from a weekday-aware run rate, against budgets."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from usage_assets.insights import daily_usage, forecast
from usage_assets.insights.forecast import budget_status, forecast_month
from usage_assets.insights.reference_data import Budget
from usage_assets_tests.insights.job_rows import insert, job, rounded

AS_OF = date(2026, 11, 18)  # a Wednesday; November 2026 starts on a Sunday


def weekly_pattern(first: date, last: date) -> dict[date, float]:
    """Mondays 160 credits, Tuesday to Friday 100, weekends 20."""
    out = {}
    day = first
    while day <= last:
        out[day] = 160.0 if day.weekday() == 0 else 100.0 if day.weekday() < 5 else 20.0
        day += timedelta(days=1)
    return out


def test_weekday_aware_projection() -> None:
    result = forecast_month(weekly_pattern(date(2026, 10, 1), AS_OF), AS_OF, date(2026, 10, 1))
    # Trailing 28 days (Oct 22 .. Nov 18) hold four of each weekday, so the rates are the pattern.
    assert result.rate_by_weekday == (160.0, 100.0, 100.0, 100.0, 100.0, 20.0, 20.0)
    # Nov 1 .. 18: weekends Nov 1, 7, 8, 14, 15 = 5 x 20 = 100; Mondays Nov 2, 9, 16 = 3 x 160
    # = 480; the other 10 weekdays x 100 = 1000. Month to date: 1580.
    assert (result.mtd_credits, result.days_elapsed, result.days_in_month) == (1580.0, 18, 30)
    # Nov 19 .. 30: Thu Fri Sat Sun Mon Tue Wed Thu Fri Sat Sun Mon:
    # 6 x 100 + 4 x 20 + 2 x 160 = 1000. (A flat 28-day mean, 2400 / 28 = 85.7 a day, would
    # say 1029.) Projected month: 2580.
    assert (result.projected_remaining, result.projected_total) == (1000.0, 2580.0)
    assert result.trailing_days == 28


def test_with_less_than_a_week_loaded_missing_weekdays_take_the_mean() -> None:
    first = date(2026, 11, 16)  # loaded from Monday: Mon 160, Tue 100, Wed 100
    result = forecast_month(weekly_pattern(first, AS_OF), AS_OF, first)
    # Mean of the 3 days = 120 stands in for Thursday to Sunday.
    assert result.rate_by_weekday == (160.0, 100.0, 100.0, 120.0, 120.0, 120.0, 120.0)
    # Only loaded days count toward month to date: 160 + 100 + 100 = 360.
    # Remaining: 8 Thu-Sun days x 120 + 2 Mondays x 160 + Tue 100 + Wed 100 = 1480.
    assert (result.mtd_credits, result.projected_remaining) == (360.0, 1480.0)


def test_days_without_usage_count_as_zero_and_the_last_day_has_nothing_left() -> None:
    month_end = date(2026, 11, 30)
    result = forecast_month({date(2026, 11, 2): 70.0}, month_end, date(2026, 10, 1))
    assert (result.mtd_credits, result.projected_remaining, result.projected_total) == (
        70.0,
        0.0,
        70.0,
    )


@pytest.mark.parametrize(
    ("projected", "mtd", "budget", "expected"),
    [
        (900.0, 500.0, None, "no_budget"),
        (900.0, 500.0, 1000.0, "on_track"),
        (1000.0, 500.0, 1000.0, "on_track"),  # exactly at the budget is within it
        (1100.0, 500.0, 1000.0, "over_budget"),
        (900.0, 1200.0, 1000.0, "over_budget"),  # already spent more than the budget
    ],
)
def test_budget_status(projected: float, mtd: float, budget: float | None, expected: str) -> None:
    assert budget_status(projected, mtd, budget) == expected


def test_the_table_per_organization_and_project(conn: duckdb.DuckDBPyConnection) -> None:
    monday = date(2026, 11, 16)
    insert(
        conn,
        [
            job(day=monday, compute_credits=160),
            job(day=monday + timedelta(days=1), compute_credits=100),
            job(day=AS_OF, compute_credits=100),
            job(day=AS_OF, compute_credits=30, project_id="p-api", project_name="api"),
        ],
    )
    daily_usage.refresh(conn, monday, AS_OF, "run-0")
    budgets = [
        Budget(date(2026, 11, 1), "acme", None, 1900.0),  # the org, by name
        Budget(date(2026, 11, 1), "org-1", "web", 2000.0),  # a project, org by id
        Budget(date(2026, 10, 1), "acme", "api", 1.0),  # another month: ignored
    ]
    result = forecast.refresh(conn, "run-1", budgets)
    assert (result.rows, result.as_of, result.over_budget) == (3, AS_OF, ["acme"])
    rows = conn.execute(
        "SELECT scope, project_name, mtd_credits, projected_month_credits, budget_credits,"
        " projected_pct_of_budget, budget_status FROM circleci_insights.credit_forecast"
        " ORDER BY scope, project_name"
    ).fetchall()
    assert rounded(rows) == rounded(
        [
            # web: as in the test above, 360 to date, 1840 projected.
            # api: 30 on Wednesday only: mean of [0, 0, 30] = 10 for Thu-Sun, Mon 0, Tue 0,
            # Wed 30: remaining 8 x 10 + 30 = 110, projected 140.
            # The org is their sum: 390 to date, 1980 projected, over its 1900 budget.
            ("organization", None, 390.0, 1980.0, 1900.0, 1980 / 1900, "over_budget"),
            ("project", "api", 30.0, 140.0, None, None, "no_budget"),
            ("project", "web", 360.0, 1840.0, 2000.0, 1840 / 2000, "on_track"),
        ]
    )
    assert forecast.refresh(conn, "run-2", []).rows == 3  # rebuilt, not appended


def test_an_empty_warehouse_has_no_forecast(conn: duckdb.DuckDBPyConnection) -> None:
    daily_usage.ensure_table(conn)
    assert forecast.refresh(conn, "run-1", []).rows == 0


def test_a_seat_fee_is_a_known_org_line_not_a_run_rate(conn: duckdb.DuckDBPyConnection) -> None:
    """The same usage as above, plus a 25,000-credit seat fee the export put on a web job row on
    Tuesday: no projection moves, and the org row shows the fee as month-to-date seat credits."""
    monday = date(2026, 11, 16)
    tuesday = monday + timedelta(days=1)
    insert(
        conn,
        [
            job(day=monday, compute_credits=160),
            job(day=tuesday, compute_credits=100),
            job(day=tuesday, compute_credits=0, user_credits=25_000),
            job(day=AS_OF, compute_credits=100),
            job(day=AS_OF, compute_credits=30, project_id="p-api", project_name="api"),
        ],
    )
    daily_usage.refresh(conn, monday, AS_OF, "run-0")
    # Budgets compare with job credits: the org's 1980 projected is within 2000 (with the seat
    # fee it would be 26,980, over).
    budgets = [
        Budget(date(2026, 11, 1), "acme", None, 2000.0),
        Budget(date(2026, 11, 1), "acme", "web", 2000.0),
    ]
    assert forecast.refresh(conn, "run-1", budgets).over_budget == []
    rows = conn.execute(
        "SELECT scope, project_name, mtd_credits, mtd_seat_credits, projected_month_credits,"
        " budget_status FROM circleci_insights.credit_forecast ORDER BY scope, project_name"
    ).fetchall()
    assert rounded(rows) == rounded(
        [
            # As without the fee: 390 to date, 1980 projected; the 25,000 apart and not projected.
            # Counted as usage it would be Tuesday's rate and a third of the mean standing in for
            # Thursday to Sunday: projected again on Nov 24 and on each of those 8 days.
            ("organization", None, 390.0, 25_000.0, 1980.0, "on_track"),
            ("project", "api", 30.0, None, 140.0, "no_budget"),
            # web: 360 to date, 1840 projected, as above.
            ("project", "web", 360.0, None, 1840.0, "on_track"),
        ]
    )
