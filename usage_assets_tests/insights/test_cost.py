"""Credits to money with date-ranged prices, and chargeback by team."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

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
        "SELECT usage_date, project_name, team, total_credits, currency, price_per_credit, cost"
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
    assert result.total_credits == 1650.0
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
        "SELECT month, team, project_name, currency, total_credits, cost, share_of_team_cost"
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
