"""Coverage and the per-table sanity rules catch what they are meant to catch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.insights import (
    cost,
    daily_usage,
    forecast,
    performance,
    right_sizing,
    sanity,
    workflow_runs,
)
from usage_assets.insights.reference_data import PricePeriod
from usage_assets_tests.insights.job_rows import DAY, insert, job

D = [DAY + timedelta(days=i) for i in range(6)]


@pytest.mark.parametrize(
    ("loaded", "passed", "missing", "ranges"),
    [
        ([], True, 0, "none"),
        ([D[0]], True, 0, "none"),
        ([D[2], D[0], D[1]], True, 0, "none"),  # order does not matter
        ([D[0], D[2]], False, 1, f"{D[1]}"),
        ([D[0], D[1], D[4], D[5], D[3]], False, 1, f"{D[2]}"),
        ([D[0], D[5], D[3]], False, 3, f"{D[1]} .. {D[2]}, {D[4]}"),
    ],
)
def test_coverage(loaded: list[date], passed: bool, missing: int, ranges: str) -> None:
    result = sanity.coverage(loaded)
    assert (result.passed, result.metadata["missing_days"], result.metadata["missing_ranges"]) == (
        passed,
        missing,
        ranges,
    )
    if not passed:
        assert "backfill them" in result.description


@pytest.fixture
def built(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    insert(
        conn,
        [
            job(),
            job(status="failed", seconds=30),
            job(day=D[1], seconds=90),
            # A seat fee on a job row: the org-level line of credit_costs.
            job(day=D[1], compute_credits=0, user_credits=25_000),
        ],
    )
    daily_usage.refresh(conn, D[0], D[1], "run-1")
    workflow_runs.refresh(conn, D[0], D[1], "run-1")
    performance.refresh(conn, (D[0], D[1]), "run-1")
    right_sizing.refresh(conn, (D[0], D[1]), "run-1", [], None)
    cost.refresh_costs(conn, "run-1", [PricePeriod(date(2020, 1, 1), None, "USD", 0.0006)], [])
    cost.refresh_chargeback(conn, "run-1")
    forecast.refresh(conn, "run-1", [])
    return conn


Rule = Callable[[duckdb.DuckDBPyConnection], RuleResult]

RULES: list[Rule] = [
    sanity.daily_usage_sane,
    sanity.workflow_runs_sane,
    sanity.workflow_performance_sane,
    sanity.job_performance_sane,
    sanity.right_sizing_sane,
    sanity.credit_costs_sane,
    sanity.team_chargeback_sane,
    sanity.credit_forecast_sane,
]


def test_freshly_built_tables_are_sane(built: duckdb.DuckDBPyConnection) -> None:
    for rule in RULES:
        result = rule(built)
        assert result.passed, result.description
    # The seat fee is the one seat_fees line; the rest are job_runs lines.
    assert built.execute(
        "SELECT cost_line, count(*), sum(credits) FROM circleci_insights.credit_costs"
        " GROUP BY cost_line ORDER BY cost_line"
    ).fetchall() == [("job_runs", 2, 30.0), ("seat_fees", 1, 25_000.0)]


@pytest.mark.parametrize(
    ("damage", "rule", "message"),
    [
        (
            "INSERT INTO circleci_insights.daily_usage SELECT * FROM circleci_insights.daily_usage LIMIT 1",
            sanity.daily_usage_sane,
            "duplicated usage_date / organization_id",
        ),
        (
            # A load that was not followed by a refresh of the insights.
            "DELETE FROM circleci.job_runs WHERE usage_date = DATE '2026-10-06'",
            sanity.daily_usage_sane,
            "1 row(s) with a day whose job runs or credits differ from circleci.job_runs",
        ),
        (
            "UPDATE circleci_insights.workflow_runs SET status = 'weird' WHERE true",
            sanity.workflow_runs_sane,
            "an unknown status",
        ),
        (
            "UPDATE circleci_insights.workflow_performance SET p50_duration_seconds = 1e9",
            sanity.workflow_performance_sane,
            "p50 above p95",
        ),
        (
            "UPDATE circleci_insights.job_performance SET success_rate = 1.5",
            sanity.job_performance_sane,
            "a success rate outside 0..1",
        ),
        (
            "UPDATE circleci_insights.credit_costs SET cost = cost * 2",
            sanity.credit_costs_sane,
            "a cost that is not credits x price",
        ),
        (
            # The seat fee lost: job lines alone are not all of daily_usage's credits.
            "DELETE FROM circleci_insights.credit_costs WHERE cost_line = 'seat_fees'",
            sanity.credit_costs_sane,
            "credits that do not add up to daily_usage (total)",
        ),
        (
            # The seat fee counted as job runs: the total still matches, the seat line does not.
            "UPDATE circleci_insights.credit_costs SET cost_line = 'job_runs'"
            " WHERE cost_line = 'seat_fees'",
            sanity.credit_costs_sane,
            "seat-fee lines that differ from daily_usage's user_credits",
        ),
        (
            "UPDATE circleci_insights.credit_costs SET project_id = 'p-web', team = 'web'"
            " WHERE cost_line = 'seat_fees'",
            sanity.credit_costs_sane,
            "a seat-fee line charged to a project or team",
        ),
        (
            "DELETE FROM circleci_insights.team_chargeback WHERE true",
            sanity.team_chargeback_sane,
            "credits that do not add up to credit_costs",
        ),
        (
            "UPDATE circleci_insights.credit_forecast SET projected_month_credits = -1",
            sanity.credit_forecast_sane,
            "a projection below month-to-date",
        ),
        (
            "UPDATE circleci_insights.credit_forecast SET mtd_seat_credits = -1"
            " WHERE scope = 'organization'",
            sanity.credit_forecast_sane,
            "negative credits",
        ),
    ],
)
def test_damage_is_caught(
    built: duckdb.DuckDBPyConnection, damage: str, rule: Rule, message: str
) -> None:
    built.execute(damage)
    result = rule(built)
    assert not result.passed
    assert message in result.description


@pytest.mark.parametrize(
    ("html", "passed"),
    [
        ("<html>" + "<svg></svg>" * 4 + "</html>", True),
        ("<html>" + "<svg></svg>" * 3 + "</html>", False),  # a chart is missing
        ("<html>" + "<svg></svg>" * 4 + "<script>alert(1)</script></html>", False),
        ('<html><img src="https://example.com/x.png">' + "<svg></svg>" * 4 + "</html>", False),
    ],
)
def test_report_self_contained(tmp_path: Path, html: str, passed: bool) -> None:
    path = tmp_path / "report.html"
    path.write_text(html)
    assert sanity.report_self_contained(path).passed is passed
    assert not sanity.report_self_contained(tmp_path / "absent.html").passed
