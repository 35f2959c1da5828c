"""Credits in money: `circleci_insights.credit_costs` (per day and project) and
`circleci_insights.team_chargeback` (per month, team and project).

A day's credits cost the price of the `price_per_credit.csv` range that covers the day (ranges never
overlap; a contract change is a new range, so history keeps the price it was priced at). A day no
range covers has an empty price and cost; the asset reports such days. A project's team comes from
`team_mapping.csv` by project name, "unassigned" when it is not listed (or there is no file).

Each row is one **cost line** (`cost_line`):

* `job_runs`: a project's **job credits** (total minus seat credits, `vocabulary.JOB_CREDITS_SQL`),
  one row per day and project (per month, team and project in the chargeback);
* `seat_fees`: the organization's seat credits (USER_CREDITS: 25,000 per active user, deducted once
  per billing cycle) on the days the export carries them, with no project and no team. Seats are
  not any project's spend, wherever the export happened to put them, so no project is charged
  for them; they are priced at the day's price like any credit.

Job credits plus seat credits add up to `daily_usage`'s total credits (the `sane` check).

The figures are **estimates** from the usage export (credits times your price file), not an
invoice. CircleCI's Plan Usage page (Plan > Plan Usage) is the source of truth for billing: CircleCI
says the Usage API and the Plans UI "may present different data", and the invoice also has plan
fees and discounts that the export does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from usage_assets.circleci.vocabulary import JOB_CREDITS_SQL, SEAT_CREDITS_SQL
from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.insights.common import create_rebuilt_table, replace_all, table
from usage_assets.insights.daily_usage import DAILY_USAGE
from usage_assets.insights.reference_data import UNASSIGNED_TEAM, PricePeriod, TeamAssignment

COSTS_NAME = "credit_costs"
CHARGEBACK_NAME = "team_chargeback"
CREDIT_COSTS = table(COSTS_NAME)
TEAM_CHARGEBACK = table(CHARGEBACK_NAME)

# The two cost lines (see the module docstring).
JOB_RUNS_LINE = "job_runs"
SEAT_FEES_LINE = "seat_fees"
# What a per-team listing shows for the seat-fee line, which has no team.
SEAT_FEES_LABEL = "seat fees (organization)"

COST_COLUMNS: dict[str, str] = {
    "usage_date": "DATE",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "cost_line": "VARCHAR",  # job_runs or seat_fees
    "project_id": "VARCHAR",  # null on the seat_fees line
    "project_name": "VARCHAR",
    "team": "VARCHAR",  # null on the seat_fees line
    "credits": "DOUBLE",  # job credits on job_runs lines, seat credits on seat_fees lines
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
    "cost_line": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "currency": "VARCHAR",
    "credits": "DOUBLE",
    "cost": "DOUBLE",
    "share_of_team_cost": "DOUBLE",  # null on the seat_fees line
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class ProjectCost:
    """A project's usage over a window: job runs and job credits (daily_usage, seat fees left
    out), team and estimated cost (credit_costs' job_runs lines; no cost without a price, and no
    team before credit_costs is built)."""

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
    """The projects with the most job credits in [first, last], most first: the one answer to
    "top projects by credits" for asset metadata, the report and the demo alike. Runs and job
    credits come from daily_usage (the `sane` check on credit_costs holds its credits equal to
    them), team and cost from credit_costs' job_runs lines where it has the project (else
    "unassigned", no cost). Both tables must exist (`daily_usage.ensure_table`, `ensure_tables`);
    credit_costs may still be empty."""
    rows = conn.execute(
        f"""WITH usage AS (
            SELECT organization_id, any_value(organization_name) AS organization_name,
                project_name, sum(job_runs) AS job_runs, sum({JOB_CREDITS_SQL}) AS credits
            FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?
            GROUP BY organization_id, project_name
        ), priced AS (
            SELECT organization_id, project_name, any_value(team) AS team, sum(cost) AS cost,
                any_value(currency) AS currency
            FROM {CREDIT_COSTS} WHERE usage_date BETWEEN ? AND ? AND cost_line = ?
            GROUP BY organization_id, project_name
        )
        SELECT u.organization_name, coalesce(u.project_name, ''), coalesce(p.team, ?), u.job_runs,
            u.credits,
            p.cost, p.currency
        FROM usage u LEFT JOIN priced p
            ON p.organization_id IS NOT DISTINCT FROM u.organization_id
            AND p.project_name IS NOT DISTINCT FROM u.project_name
        ORDER BY u.credits DESC, u.project_name LIMIT ?""",
        [first, last, first, last, JOB_RUNS_LINE, UNASSIGNED_TEAM, limit],
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
class SeatFees:
    """An organization's seat fees over a window: the org-level line, in no project's figures."""

    organization: str
    credits: float
    cost: float | None
    currency: str | None


def seat_fees(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> list[SeatFees]:
    """Seat credits and their cost per organization (and currency) in [first, last], from
    credit_costs' seat_fees lines; only organizations that have any. credit_costs must exist."""
    return [
        SeatFees(str(org), float(credits), None if money is None else float(money), currency)
        for org, credits, money, currency in conn.execute(
            f"SELECT any_value(organization_name), sum(credits), sum(cost), currency"
            f" FROM {CREDIT_COSTS} WHERE usage_date BETWEEN ? AND ? AND cost_line = ?"
            " GROUP BY organization_id, currency ORDER BY 1, currency",
            [first, last, SEAT_FEES_LINE],
        ).fetchall()
    ]


@dataclass(frozen=True)
class CostResult:
    rows: int
    job_credits: float
    seat_credits: float
    total_cost_by_currency: dict[str, float]
    days_without_price: int
    unassigned_projects: list[str]

    @property
    def total_credits(self) -> float:
        """Job plus seat credits: daily_usage's total credits."""
        return self.job_credits + self.seat_credits


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    create_rebuilt_table(conn, COSTS_NAME, COST_COLUMNS)
    create_rebuilt_table(conn, CHARGEBACK_NAME, CHARGEBACK_COLUMNS)


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
        WITH lines AS (
            SELECT usage_date, organization_id, organization_name, ? AS cost_line, project_id,
                project_name, {JOB_CREDITS_SQL} AS credits
            FROM {DAILY_USAGE}
            UNION ALL
            SELECT usage_date, organization_id, organization_name, ?, NULL, NULL,
                {SEAT_CREDITS_SQL}
            FROM {DAILY_USAGE} WHERE {SEAT_CREDITS_SQL} <> 0
        )
        SELECT l.usage_date, l.organization_id, any_value(l.organization_name), l.cost_line,
            l.project_id, any_value(l.project_name),
            CASE WHEN l.cost_line = ? THEN coalesce(any_value(t.team), '{UNASSIGNED_TEAM}') END,
            sum(l.credits), p.currency, p.price_per_credit,
            sum(l.credits) * p.price_per_credit, ?, now()
        FROM lines l
        LEFT JOIN _teams t ON t.project_name = l.project_name
        LEFT JOIN _prices p
            ON l.usage_date >= p.valid_from AND (p.valid_to IS NULL OR l.usage_date <= p.valid_to)
        GROUP BY l.usage_date, l.organization_id, l.cost_line, l.project_id, p.currency,
            p.price_per_credit
        """,
        [JOB_RUNS_LINE, SEAT_FEES_LINE, JOB_RUNS_LINE, run_id],
    )
    job_credits, seat_credits, missing = fetch_one(
        conn,
        f"SELECT coalesce(sum(credits) FILTER (WHERE cost_line = ?), 0),"
        f" coalesce(sum(credits) FILTER (WHERE cost_line = ?), 0),"
        f" count(DISTINCT usage_date) FILTER (WHERE price_per_credit IS NULL) FROM {CREDIT_COSTS}",
        [JOB_RUNS_LINE, SEAT_FEES_LINE],
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
    return CostResult(
        rows, float(job_credits), float(seat_credits), by_currency, int(missing), unassigned
    )


def refresh_chargeback(conn: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Monthly credits and cost per team and project, from `credit_costs`: its job_runs lines per
    team and project, its seat_fees lines as one org-level row per month (no team, no project, no
    share), so a month's chargeback still adds up to all its credits."""
    ensure_tables(conn)
    return replace_all(
        conn,
        CHARGEBACK_NAME,
        f"""
        WITH monthly AS (
            SELECT date_trunc('month', usage_date)::DATE AS month, team, organization_id,
                any_value(organization_name) AS organization_name, cost_line, project_id,
                any_value(project_name) AS project_name, currency,
                sum(credits) AS credits, sum(cost) AS cost
            FROM {CREDIT_COSTS}
            GROUP BY month, team, organization_id, cost_line, project_id, currency
        )
        SELECT *,
            CASE WHEN cost_line = ? THEN
                cost / nullif(sum(cost) OVER (PARTITION BY month, team, cost_line, currency), 0)
            END,
            ?, now()
        FROM monthly
        """,
        [JOB_RUNS_LINE, run_id],
    )
