"""Credits to money with date-ranged prices, and chargeback by team."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from usage_assets.circleci.vocabulary import CREDIT_COLUMNS, SEAT_CREDITS, job_credits
from usage_assets.insights import cost, daily_usage
from usage_assets.insights.reference_data import PricePeriod, TeamAssignment
from usage_assets_tests.insights.job_rows import insert, job, rounded

SEP30, OCT1, OCT2 = date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 2)
PRICES = [
    PricePeriod(date(2026, 1, 1), date(2026, 9, 30), "USD", 0.0006),
    PricePeriod(date(2026, 10, 1), None, "USD", 0.0005),  # the new contract
]
TEAMS = [TeamAssignment("web", "frontend"), TeamAssignment("docs", "frontend")]


@pytest.fixture
def usage(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    insert(
        conn,
        [
            job(day=SEP30, compute_credits=100),
            job(day=SEP30, project_id="p-api", project_name="api", compute_credits=30),
            job(day=SEP30, project_id="p-api", project_name="api", compute_credits=20),
            job(day=OCT1, compute_credits=200),
            job(day=OCT1, project_id="p-docs", project_name="docs", compute_credits=300),
            job(day=OCT2, project_id="p-api", project_name="api", compute_credits=1000),
        ],
    )
    daily_usage.refresh(conn, SEP30, OCT2, "run-0")
    return conn


def costs(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT usage_date, project_name, team, credits, currency, price_per_credit, cost"
        " FROM circleci_insights.credit_costs ORDER BY usage_date, project_name"
    ).fetchall()


def test_each_day_is_priced_by_the_range_covering_it(usage: duckdb.DuckDBPyConnection) -> None:
    result = cost.refresh_costs(usage, "run-1", PRICES, TEAMS)
    assert rounded(costs(usage)) == rounded(
        [
            # api: 30 + 20 = 50 credits x 0.0006 = 0.03; web: 100 x 0.0006 = 0.06.
            (SEP30, "api", "unassigned", 50.0, "USD", 0.0006, 0.03),
            (SEP30, "web", "frontend", 100.0, "USD", 0.0006, 0.06),
            # From Oct 1 the price is 0.0005: docs 300 -> 0.15, web 200 -> 0.10, api 1000 -> 0.50.
            (OCT1, "docs", "frontend", 300.0, "USD", 0.0005, 0.15),
            (OCT1, "web", "frontend", 200.0, "USD", 0.0005, 0.10),
            (OCT2, "api", "unassigned", 1000.0, "USD", 0.0005, 0.50),
        ]
    )
    # 1650 credits; 0.03 + 0.06 + 0.15 + 0.10 + 0.50 = 0.84 USD.
    assert (result.job_credits, result.seat_credits, result.total_credits) == (1650.0, 0.0, 1650.0)
    assert result.total_cost_by_currency == pytest.approx({"USD": 0.84})
    assert (result.days_without_price, result.unassigned_projects) == (0, ["api"])


def test_days_without_a_price_have_no_cost_and_are_counted(
    usage: duckdb.DuckDBPyConnection,
) -> None:
    result = cost.refresh_costs(usage, "run-1", PRICES[1:], TEAMS)
    assert [(day, price, money) for day, _, _, _, _, price, money in costs(usage)][:2] == [
        (SEP30, None, None),
        (SEP30, None, None),
    ]
    assert result.days_without_price == 1
    assert cost.refresh_costs(usage, "run-2", [], []).total_cost_by_currency == {}
    assert {team for _, _, team, *_ in costs(usage)} == {"unassigned"}  # no mapping file


def test_chargeback_per_month_team_and_project(usage: duckdb.DuckDBPyConnection) -> None:
    cost.refresh_costs(usage, "run-1", PRICES, TEAMS)
    assert cost.refresh_chargeback(usage, "run-1") == 5
    rows = usage.execute(
        "SELECT month, team, project_name, currency, credits, cost, share_of_team_cost"
        " FROM circleci_insights.team_chargeback ORDER BY month, team, project_name"
    ).fetchall()
    assert rounded(rows) == rounded(
        [
            (date(2026, 9, 1), "frontend", "web", "USD", 100.0, 0.06, 1.0),
            (date(2026, 9, 1), "unassigned", "api", "USD", 50.0, 0.03, 1.0),
            # frontend in October: docs 0.15 + web 0.10 = 0.25 USD; shares 0.6 and 0.4.
            (date(2026, 10, 1), "frontend", "docs", "USD", 300.0, 0.15, 0.6),
            (date(2026, 10, 1), "frontend", "web", "USD", 200.0, 0.10, 0.4),
            (date(2026, 10, 1), "unassigned", "api", "USD", 1000.0, 0.50, 1.0),
        ]
    )


def test_a_currency_change_keeps_the_currencies_apart(usage: duckdb.DuckDBPyConnection) -> None:
    prices = [PRICES[0], PricePeriod(date(2026, 10, 1), None, "EUR", 0.0004)]
    result = cost.refresh_costs(usage, "run-1", prices, TEAMS)
    # USD: September's 150 credits x 0.0006 = 0.09; EUR: October's 1500 x 0.0004 = 0.6.
    assert result.total_cost_by_currency == pytest.approx({"EUR": 0.6, "USD": 0.09})


def test_rebuilding_replaces(usage: duckdb.DuckDBPyConnection) -> None:
    cost.refresh_costs(usage, "run-1", PRICES, TEAMS)
    cost.refresh_chargeback(usage, "run-1")
    assert cost.refresh_costs(usage, "run-2", PRICES, TEAMS).rows == 5
    assert cost.refresh_chargeback(usage, "run-2") == 5


def test_seat_credits_are_a_column_of_the_export() -> None:
    # The rule subtracts a column daily_usage and job_runs really have.
    assert SEAT_CREDITS in CREDIT_COLUMNS
    assert job_credits(25_050.0, 25_000.0) == 50.0
    assert job_credits(10.0, None) == 10.0


def test_a_seat_fee_is_an_org_line_not_the_projects(usage: duckdb.DuckDBPyConnection) -> None:
    """The export puts a 25,000-credit seat fee on one of web's October 1 job rows (a 50-credit
    job): web is charged its 250 job credits, and the seat fee is an org-level line of its own,
    priced at October 1's 0.0005."""
    insert(usage, [job(day=OCT1, compute_credits=50, user_credits=25_000)])
    daily_usage.refresh(usage, OCT1, OCT1, "run-0")
    result = cost.refresh_costs(usage, "run-1", PRICES, TEAMS)
    rows = usage.execute(
        "SELECT cost_line, organization_name, project_name, team, credits, price_per_credit, cost"
        " FROM circleci_insights.credit_costs WHERE usage_date = ? ORDER BY cost_line, project_name",
        [OCT1],
    ).fetchall()
    assert rounded(rows) == rounded(
        [
            # docs 300 x 0.0005 = 0.15; web (200 + 50) x 0.0005 = 0.125, not 25,250 credits.
            ("job_runs", "acme", "docs", "frontend", 300.0, 0.0005, 0.15),
            ("job_runs", "acme", "web", "frontend", 250.0, 0.0005, 0.125),
            # The seat fee: no project, no team, 25,000 x 0.0005 = 12.50 USD.
            ("seat_fees", "acme", None, None, 25_000.0, 0.0005, 12.5),
        ]
    )
    # Job credits 1650 + 50 = 1700, seat credits 25,000; together daily_usage's 26,700.
    assert (result.job_credits, result.seat_credits, result.total_credits) == (
        1700.0,
        25_000.0,
        26_700.0,
    )
    (usage_total,) = usage.execute(
        "SELECT sum(total_credits) FROM circleci_insights.daily_usage"
    ).fetchone() or (None,)
    assert usage_total == 26_700.0
    # 0.84 USD of job runs + 0.025 for the new job + 12.50 of seats.
    assert result.total_cost_by_currency == pytest.approx({"USD": 13.365})

    cost.refresh_chargeback(usage, "run-1")
    october = usage.execute(
        "SELECT team, cost_line, project_name, credits, cost, share_of_team_cost"
        " FROM circleci_insights.team_chargeback WHERE month = ?"
        " ORDER BY cost_line, team, project_name",
        [date(2026, 10, 1)],
    ).fetchall()
    assert rounded(october) == rounded(
        [
            # frontend: docs 0.15 + web 0.125 = 0.275 USD; shares 0.15 / 0.275 and 0.125 / 0.275.
            ("frontend", "job_runs", "docs", 300.0, 0.15, 0.15 / 0.275),
            ("frontend", "job_runs", "web", 250.0, 0.125, 0.125 / 0.275),
            ("unassigned", "job_runs", "api", 1000.0, 0.5, 1.0),
            (None, "seat_fees", None, 25_000.0, 12.5, None),
        ]
    )

    # The top projects rank and price job credits only; the seat fee is listed apart.
    top = cost.top_projects(usage, OCT1, OCT1, 5)
    assert [(p.project, p.job_runs, p.credits, round(p.cost or 0, 9)) for p in top] == [
        ("docs", 1, 300.0, 0.15),
        ("web", 2, 250.0, 0.125),
    ]
    assert cost.seat_fees(usage, OCT1, OCT1) == [cost.SeatFees("acme", 25_000.0, 12.5, "USD")]
    assert cost.seat_fees(usage, SEP30, SEP30) == []


def test_an_older_layout_is_rebuilt_not_an_error(conn: duckdb.DuckDBPyConnection) -> None:
    """A warehouse written before the cost lines existed: the roll-up is recreated, since every
    refresh rebuilds it whole anyway."""
    conn.execute("CREATE SCHEMA circleci_insights")
    conn.execute(
        "CREATE TABLE circleci_insights.credit_costs (usage_date DATE, total_credits DOUBLE)"
    )
    conn.execute("INSERT INTO circleci_insights.credit_costs VALUES ('2026-10-01', 5)")
    insert(conn, [job(day=OCT1, compute_credits=40)])
    daily_usage.refresh(conn, OCT1, OCT1, "run-0")
    assert cost.refresh_costs(conn, "run-1", PRICES, TEAMS).rows == 1
    assert costs(conn) == [(OCT1, "web", "frontend", 40.0, "USD", 0.0005, 0.02)]
