"""Workflow and job performance in Insights' terms, on runs whose numbers are easy to follow."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from usage_assets.insights import performance, workflow_runs
from usage_assets.insights.performance import Period, full_weeks, performance_periods
from usage_assets.insights.reference_data import DefaultBranch
from usage_assets_tests.insights.job_rows import insert, job, never_ran

SEP = date(2026, 9, 7)
OCT = date(2026, 10, 5)
LOADED = (date(2026, 9, 1), date(2026, 10, 31))


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (
            date(2026, 9, 1),
            date(2026, 10, 31),
            [
                Period("2026-09", "month", date(2026, 9, 1), date(2026, 9, 30), None),
                Period("2026-10", "month", date(2026, 10, 1), date(2026, 10, 31), "2026-09"),
                # Oct 2 .. Oct 31 is 30 days; the 30 before are Sep 2 .. Oct 1.
                Period(
                    "last_30_days",
                    "rolling",
                    date(2026, 10, 2),
                    date(2026, 10, 31),
                    "previous_30_days",
                ),
                Period("previous_30_days", "previous", date(2026, 9, 2), date(2026, 10, 1), None),
            ],
        ),
        (
            # Loaded from Oct 20: October is clipped to 12 days; nothing before the rolling window.
            date(2026, 10, 20),
            date(2026, 11, 5),
            [
                Period("2026-10", "month", date(2026, 10, 20), date(2026, 10, 31), None),
                Period("2026-11", "month", date(2026, 11, 1), date(2026, 11, 5), "2026-10"),
                Period("last_30_days", "rolling", date(2026, 10, 20), date(2026, 11, 5), None),
            ],
        ),
    ],
)
def test_periods_are_months_and_the_last_30_days_clipped_to_the_loaded_days(
    first: date, last: date, expected: list[Period]
) -> None:
    periods = performance_periods(first, last)
    assert periods == expected
    assert [p.days for p in periods][:2] == [(p.end - p.start).days + 1 for p in expected][:2]


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        # Thu Oct 1 .. Sat Oct 31: whole weeks are Mon Oct 5 .. Sun Oct 25.
        (date(2026, 10, 1), date(2026, 10, 31), (date(2026, 10, 5), date(2026, 10, 25))),
        # Less than two whole weeks: keep everything.
        (date(2026, 10, 1), date(2026, 10, 12), (date(2026, 10, 1), date(2026, 10, 12))),
    ],
)
def test_full_weeks(first: date, last: date, expected: tuple[date, date]) -> None:
    assert full_weeks(first, last) == expected


@pytest.fixture
def runs(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """September (main): successes of 100 s and 300 s, one failure.
    October (main): successes of 100, 200, 300, 400 s, a failure (with a job blocked behind it)
    and a cancel; plus one 1000 s success on feature/x. One job per workflow, 10 credits each."""
    insert(
        conn,
        [
            job(day=SEP, seconds=100),
            job(day=SEP, seconds=300),
            job(day=SEP, seconds=40, status="failed"),
            *[job(day=OCT, seconds=s) for s in (100, 200, 300, 400)],
            job(day=OCT, seconds=50, status="failed", workflow_id="wf-failed"),
            never_ran(day=OCT, workflow_id="wf-failed", workflow_ok=False),
            job(day=OCT, seconds=20, status="canceled"),
            job(day=OCT, seconds=1000, vcs_branch="feature/x"),
        ],
    )
    workflow_runs.refresh(conn, *LOADED, "run-0")
    return conn


COLUMNS = (
    "runs, successful_runs, failed_runs, canceled_runs, success_rate, p50_duration_seconds,"
    " p95_duration_seconds, throughput, total_credits, failed_run_credits, success_rate_trend,"
    " p95_duration_trend, throughput_trend, credits_trend"
)


def metrics(
    conn: duckdb.DuckDBPyConnection, table: str, period: str, scope: str
) -> tuple[object, ...]:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM circleci_insights.{table} WHERE period = ? AND branch_scope = ?",
        [period, scope],
    ).fetchall()
    assert len(row) == 1
    return tuple(row[0])


# October on the default branch (main): 6 runs, 4 successes, 1 failure, 1 cancel.
# success rate 4 / (4 + 1) = 0.8; durations of successes 100, 200, 300, 400:
# p50 = (200 + 300) / 2 = 250; p95 at position 0.95 x 3 = 2.85: 300 + 0.85 x 100 = 385.
OCTOBER_DEFAULT = (6, 4, 1, 1, 0.8, 250.0, 385.0, 6 / 31, 60.0, 10.0)
# September: 3 runs, success rate 2/3, p95 at 0.95 x 1: 100 + 0.95 x 200 = 290,
# throughput 3 / 30 = 0.1 a day, 30 credits = 1 a day.
OCTOBER_TRENDS = (
    0.8 / (2 / 3) - 1,  # success rate: +20 %
    385 / 290 - 1,  # p95
    (6 / 31) / (3 / 30) - 1,  # throughput: runs per day
    (60 / 31) / (30 / 30) - 1,  # credits per day
)


@pytest.mark.parametrize("table", [performance.WORKFLOW_NAME, performance.JOB_NAME])
def test_default_branch_metrics_and_trends(runs: duckdb.DuckDBPyConnection, table: str) -> None:
    performance.refresh(runs, LOADED, "run-1")
    # Jobs: the blocked job never ran, so it is not a job run; the workflow numbers are the same
    # because every workflow here has one job that ran.
    assert metrics(runs, table, "2026-10", "default") == pytest.approx(
        OCTOBER_DEFAULT + OCTOBER_TRENDS
    )
    # September has no previous month: no trends.
    assert metrics(runs, table, "2026-09", "default") == pytest.approx(
        (3, 2, 1, 0, 2 / 3, 200.0, 290.0, 3 / 30, 30.0, 10.0, None, None, None, None)
    )


def test_all_branches_include_the_feature_branch(runs: duckdb.DuckDBPyConnection) -> None:
    performance.refresh(runs, LOADED, "run-1")
    # + the 1000 s success on feature/x: 7 runs, 5 successes; success rate 5/6;
    # successes 100, 200, 300, 400, 1000: p50 = 300, p95 at 0.95 x 4 = 3.8: 400 + 0.8 x 600 = 880.
    assert metrics(runs, performance.WORKFLOW_NAME, "2026-10", "all")[:10] == pytest.approx(
        (7, 5, 1, 1, 5 / 6, 300.0, 880.0, 7 / 31, 70.0, 10.0)
    )


def test_last_30_days_against_the_30_before(runs: duckdb.DuckDBPyConnection) -> None:
    performance.refresh(runs, LOADED, "run-1")
    # Oct 2 .. 31 holds all of October's runs, Sep 2 .. Oct 1 all of September's; both 30 days.
    assert metrics(runs, performance.WORKFLOW_NAME, "last_30_days", "default") == pytest.approx(
        (
            *(6, 4, 1, 1, 0.8, 250.0, 385.0, 6 / 30, 60.0, 10.0),
            *(0.8 / (2 / 3) - 1, 385 / 290 - 1, (6 / 30) / (3 / 30) - 1, (60 / 30) / (30 / 30) - 1),
        )
    )
    # The helper period is never published.
    assert runs.execute(
        "SELECT DISTINCT period FROM circleci_insights.workflow_performance ORDER BY 1"
    ).fetchall() == [("2026-09",), ("2026-10",), ("last_30_days",)]


def test_no_trend_against_a_previous_period_of_few_loaded_days(
    runs: duckdb.DuckDBPyConnection,
) -> None:
    # Loaded from Sep 28: September is 3 days, too few to trend against.
    performance.refresh(runs, (date(2026, 9, 28), date(2026, 10, 31)), "run-1")
    assert metrics(runs, performance.WORKFLOW_NAME, "2026-10", "default")[10:] == (
        None,
        None,
        None,
        None,
    )


def test_default_branch_is_inferred_or_taken_from_the_file(runs: duckdb.DuckDBPyConnection) -> None:
    performance.refresh(runs, LOADED, "run-1")
    (inferred,) = runs.execute(
        "SELECT DISTINCT default_branch FROM circleci_insights.workflow_performance"
    ).fetchall()
    assert inferred == ("main",)  # 9 runs on main, 1 on feature/x

    performance.refresh(runs, LOADED, "run-2", default_branches=[DefaultBranch("web", "feature/x")])
    # Only the feature branch's single 1000 s success is on the "default" branch now.
    assert metrics(runs, performance.WORKFLOW_NAME, "2026-10", "default")[:10] == pytest.approx(
        (1, 1, 0, 0, 1.0, 1000.0, 1000.0, 1 / 31, 10.0, 0.0)
    )


def test_rebuilding_replaces_every_row(runs: duckdb.DuckDBPyConnection) -> None:
    first = performance.refresh(runs, LOADED, "run-1")
    second = performance.refresh(runs, LOADED, "run-2")
    # 3 periods x 2 scopes for workflow "build" and for job "build / test".
    assert first == second == {performance.WORKFLOW_NAME: 6, performance.JOB_NAME: 6}
    assert runs.execute(
        "SELECT DISTINCT insights_run_id FROM circleci_insights.job_performance"
    ).fetchall() == [("run-2",)]


def test_weekly_trend_of_the_top_workflows(conn: duckdb.DuckDBPyConnection) -> None:
    monday = date(2026, 10, 5)
    insert(
        conn,
        [
            # Week of Oct 5: successes of 100 and 200 s and a failure: p95 = 100 + 0.95 x 100
            # = 195, success rate 2/3. Week of Oct 12: one 300 s success.
            job(day=monday, seconds=100),
            job(day=monday + timedelta(days=1), seconds=200),
            job(day=monday + timedelta(days=2), seconds=5, status="failed"),
            job(day=monday + timedelta(days=7), seconds=300),
        ],
    )
    workflow_runs.refresh(conn, monday, monday + timedelta(days=7), "run-0")
    points = performance.weekly_workflow_trend(conn)
    assert [(p.week, p.series) for p in points] == [
        (monday, "web / build"),
        (monday + timedelta(days=7), "web / build"),
    ]
    assert points[0].p95_duration_seconds == pytest.approx(195.0)
    assert points[0].success_rate == pytest.approx(2 / 3)
    assert (points[1].p95_duration_seconds, points[1].success_rate) == (300.0, 1.0)
