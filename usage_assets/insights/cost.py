"""Credits in money: `circleci_insights.credit_costs` (per day and project) and
`circleci_insights.team_chargeback` (per month, team and project).

A day's credits cost the price of the `price_per_credit.csv` range that covers the day (ranges never
overlap; a contract change is a new range, so history keeps the price it was billed at). A day no
range covers has an empty price and cost; the asset reports such days. A project's team comes from
`team_mapping.csv` by project name, "unassigned" when it is not listed (or there is no file).

These are estimates from the usage export, which is what CircleCI bills from; the invoice also has
plan fees, seats and discounts that are not in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.insights.common import create_table, replace_all, table
from usage_assets.insights.daily_usage import DAILY_USAGE
from usage_assets.insights.reference_data import UNASSIGNED_TEAM, PricePeriod, TeamAssignment

COSTS_NAME = "credit_costs"
CHARGEBACK_NAME = "team_chargeback"
CREDIT_COSTS = table(COSTS_NAME)
TEAM_CHARGEBACK = table(CHARGEBACK_NAME)

COST_COLUMNS: dict[str, str] = {
    "usage_date": "DATE",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "team": "VARCHAR",
    "total_credits": "DOUBLE",
    "currency": "VARCHAR",
    "price_per_credit": "DOUBLE",
    "cost": "DOUBLE",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}
CHARGEBACK_COLUMNS: dict[str, str] = {
    "month": "DATE",
    "team": "VARCHAR",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "currency": "VARCHAR",
    "total_credits": "DOUBLE",
    "cost": "DOUBLE",
    "share_of_team_cost": "DOUBLE",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class ProjectCost:
    """A project's usage over a window: job runs and credits (daily_usage), team and estimated
    cost (credit_costs; no cost without a price, and no team before credit_costs is built)."""

    organization: str
    project: str
    team: str
    job_runs: int
    credits: float
    cost: float | None
    currency: str | None


def top_projects(
    conn: duckdb.DuckDBPyConnection, first: date, last: date, limit: int
) -> list[ProjectCost]:
    """The projects with the most credits in [first, last], most first: the one answer to "top
    projects by credits" for asset metadata, the report and the demo alike. Runs and credits come
    from daily_usage (the `sane` check on credit_costs holds its credits equal to them), team and
    cost from credit_costs where it has the project (else "unassigned", no cost). Both tables must
    exist (`daily_usage.ensure_table`, `ensure_tables`); credit_costs may still be empty."""
    rows = conn.execute(
        f"""WITH usage AS (
            SELECT organization_id, any_value(organization_name) AS organization_name,
                project_name, sum(job_runs) AS job_runs, sum(total_credits) AS credits
            FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?
            GROUP BY organization_id, project_name
        ), priced AS (
            SELECT organization_id, project_name, any_value(team) AS team, sum(cost) AS cost,
                any_value(currency) AS currency
            FROM {CREDIT_COSTS} WHERE usage_date BETWEEN ? AND ?
            GROUP BY organization_id, project_name
        )
        SELECT u.organization_name, coalesce(u.project_name, ''), coalesce(p.team, ?), u.job_runs,
            u.credits,
            p.cost, p.currency
        FROM usage u LEFT JOIN priced p
            ON p.organization_id IS NOT DISTINCT FROM u.organization_id
            AND p.project_name IS NOT DISTINCT FROM u.project_name
        ORDER BY u.credits DESC, u.project_name LIMIT ?""",
        [first, last, first, last, UNASSIGNED_TEAM, limit],
    ).fetchall()
    return [
        ProjectCost(
            str(org),
            str(project),
            str(team),
            int(runs),
            float(credits),
            None if money is None else float(money),
            None if currency is None else str(currency),
        )
        for org, project, team, runs, credits, money, currency in rows
    ]


@dataclass(frozen=True)
class CostResult:
    rows: int
    total_credits: float
    total_cost_by_currency: dict[str, float]
    days_without_price: int
    unassigned_projects: list[str]


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    create_table(conn, COSTS_NAME, COST_COLUMNS)
    create_table(conn, CHARGEBACK_NAME, CHARGEBACK_COLUMNS)


def _register(
    conn: duckdb.DuckDBPyConnection,
    prices: Sequence[PricePeriod],
    teams: Sequence[TeamAssignment],
) -> None:
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _prices (valid_from DATE, valid_to DATE, currency VARCHAR,"
        " price_per_credit DOUBLE)"
    )
    if prices:
        conn.executemany(
            "INSERT INTO _prices VALUES (?, ?, ?, ?)",
            [[p.valid_from, p.valid_to, p.currency, p.price_per_credit] for p in prices],
        )
    conn.execute("CREATE OR REPLACE TEMP TABLE _teams (project_name VARCHAR, team VARCHAR)")
    if teams:
        conn.executemany(
            "INSERT INTO _teams VALUES (?, ?)", [[t.project_name, t.team] for t in teams]
        )


def refresh_costs(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    prices: Sequence[PricePeriod],
    teams: Sequence[TeamAssignment],
) -> CostResult:
    ensure_tables(conn)
    _register(conn, prices, teams)
    rows = replace_all(
        conn,
        COSTS_NAME,
        f"""
        SELECT u.usage_date, u.organization_id, any_value(u.organization_name), u.project_id,
            any_value(u.project_name), coalesce(any_value(t.team), '{UNASSIGNED_TEAM}'),
            sum(u.total_credits), p.currency, p.price_per_credit,
            sum(u.total_credits) * p.price_per_credit, ?, now()
        FROM {DAILY_USAGE} u
        LEFT JOIN _teams t ON t.project_name = u.project_name
        LEFT JOIN _prices p
            ON u.usage_date >= p.valid_from AND (p.valid_to IS NULL OR u.usage_date <= p.valid_to)
        GROUP BY u.usage_date, u.organization_id, u.project_id, p.currency, p.price_per_credit
        """,
        [run_id],
    )
    credits, missing = fetch_one(
        conn,
        f"SELECT coalesce(sum(total_credits), 0),"
        f" count(DISTINCT usage_date) FILTER (WHERE price_per_credit IS NULL) FROM {CREDIT_COSTS}",
    )
    by_currency = {
        str(currency): float(cost)
        for currency, cost in conn.execute(
            f"SELECT currency, sum(cost) FROM {CREDIT_COSTS} WHERE currency IS NOT NULL"
            " GROUP BY currency ORDER BY currency"
        ).fetchall()
    }
    unassigned = [
        str(name)
        for (name,) in conn.execute(
            f"SELECT DISTINCT project_name FROM {CREDIT_COSTS} WHERE team = ? ORDER BY 1",
            [UNASSIGNED_TEAM],
        ).fetchall()
    ]
    return CostResult(rows, float(credits), by_currency, int(missing), unassigned)


def refresh_chargeback(conn: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Monthly credits and cost per team and project, from `credit_costs`."""
    ensure_tables(conn)
    return replace_all(
        conn,
        CHARGEBACK_NAME,
        f"""
        WITH monthly AS (
            SELECT date_trunc('month', usage_date)::DATE AS month, team, organization_id,
                any_value(organization_name) AS organization_name, project_id,
                any_value(project_name) AS project_name, currency,
                sum(total_credits) AS total_credits, sum(cost) AS cost
            FROM {CREDIT_COSTS}
            GROUP BY month, team, organization_id, project_id, currency
        )
        SELECT *, cost / nullif(sum(cost) OVER (PARTITION BY month, team, currency), 0), ?, now()
        FROM monthly
        """,
        [run_id],
    )
