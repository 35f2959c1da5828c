"""Workflow and job performance in Insights' terms, on runs whose numbers are easy to follow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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
    "runs, successful_runs, failed_runs, canceled_runs, completed_runs, success_rate,"
    " p50_duration_seconds, p95_duration_seconds, p50_successful_duration_seconds,"
    " p95_successful_duration_seconds, throughput, insights_credits, total_credits,"
    " failed_run_credits, success_rate_trend, p95_duration_trend, p50_duration_trend,"
    " throughput_trend, insights_credits_trend, total_credits_trend"
)
TRENDS = 14  # the first trend column's position in COLUMNS


def metrics(
    conn: duckdb.DuckDBPyConnection, table: str, period: str, scope: str
) -> tuple[object, ...]:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM circleci_insights.{table} WHERE period = ? AND branch_scope = ?",
        [period, scope],
    ).fetchall()
    assert len(row) == 1
    return tuple(row[0])


# October on the default branch (main): 6 runs, 4 successes, 1 failure, 1 cancel, all completed.
# success rate 4 / (6 - 1) = 0.8. Completed durations 20, 50, 100, 200, 300, 400: p50 = 150;
# p95 at position 0.95 x 5 = 4.75: 300 + 0.75 x 100 = 375. Successes only (100..400): p50 = 250,
# p95 at 0.95 x 3 = 2.85: 300 + 0.85 x 100 = 385.
OCTOBER_DEFAULT = (6, 4, 1, 1, 6, 0.8, 150.0, 375.0, 250.0, 385.0, 6 / 31, 60.0, 60.0, 10.0)
# September, all on one day: 3 runs, success rate 2/3, completed 40, 100, 300: p50 = 100,
# p95 at 0.95 x 2 = 1.9: 100 + 0.9 x 200 = 280 (the only day, so also the worst daily p95 and the
# median daily p50); throughput 3 / 30 = 0.1 a day, 30 credits = 1 a day.
OCTOBER_TRENDS = (
    0.8 / (2 / 3) - 1,  # success rate: +20 %
    375 / 280 - 1,  # p95 against the worst daily p95
    150 / 100 - 1,  # p50 against the median daily p50
    (6 / 31) / (3 / 30) - 1,  # throughput: runs per day
    (60 / 31) / (30 / 30) - 1,  # Insights credits per day
    (60 / 31) / (30 / 30) - 1,  # total credits per day
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
        (3, 2, 1, 0, 3, 2 / 3, 100.0, 280.0, 200.0, 290.0, 3 / 30, 30.0, 30.0, 10.0) + (None,) * 6
    )


def test_all_branches_include_the_feature_branch(runs: duckdb.DuckDBPyConnection) -> None:
    performance.refresh(runs, LOADED, "run-1")
    # + the 1000 s success on feature/x: 7 runs, 5 successes, 1 cancel: success rate 5/6;
    # completed 20, 50, 100, 200, 300, 400, 1000: p50 = 200, p95 at 0.95 x 6 = 5.7:
    # 400 + 0.7 x 600 = 820; successes 100..400, 1000: p50 = 300, p95 at 3.8: 400 + 0.8 x 600.
    assert metrics(runs, performance.WORKFLOW_NAME, "2026-10", "all")[:TRENDS] == pytest.approx(
        (7, 5, 1, 1, 7, 5 / 6, 200.0, 820.0, 300.0, 880.0, 7 / 31, 70.0, 70.0, 10.0)
    )


def test_last_30_days_against_the_30_before(runs: duckdb.DuckDBPyConnection) -> None:
    performance.refresh(runs, LOADED, "run-1")
    # Oct 2 .. 31 holds all of October's runs, Sep 2 .. Oct 1 all of September's; both 30 days.
    assert metrics(runs, performance.WORKFLOW_NAME, "last_30_days", "default") == pytest.approx(
        (
            *(6, 4, 1, 1, 6, 0.8, 150.0, 375.0, 250.0, 385.0, 6 / 30, 60.0, 60.0, 10.0),
            *(0.8 / (2 / 3) - 1, 375 / 280 - 1, 150 / 100 - 1, (6 / 30) / (3 / 30) - 1),
            *((60 / 30) / (30 / 30) - 1, (60 / 30) / (30 / 30) - 1),
        )
    )
    # The helper period is never published.
    assert runs.execute(
        "SELECT DISTINCT period FROM circleci_insights.workflow_performance ORDER BY 1"
    ).fetchall() == [("2026-09",), ("2026-10",), ("last_30_days",)]


@pytest.fixture
def glossary_runs(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Runs of every outcome Insights distinguishes, one job per workflow, 10 compute credits
    each unless said otherwise. September, over three days: Sep 7 successes of 100 and 300 s;
    Sep 8 a 500 s success and a 40 s failure; Sep 9 a 60 s success. October: successes of 100
    s (with 5 DLC and 7 storage credits) and 200 s, a 300 s failure, a 30 s infrastructure
    failure (an errored run), a 50 s cancel, and a job still running (no stop, no credits)."""
    started = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
    insert(
        conn,
        [
            job(day=date(2026, 9, 7), seconds=100),
            job(day=date(2026, 9, 7), seconds=300),
            job(day=date(2026, 9, 8), seconds=500),
            job(day=date(2026, 9, 8), seconds=40, status="failed"),
            job(day=date(2026, 9, 9), seconds=60),
            job(day=OCT, seconds=100, dlc_credits=5.0, storage_credits=7.0),
            job(day=OCT, seconds=200),
            job(day=OCT, seconds=300, status="failed"),
            job(day=OCT, seconds=30, status="infrastructure_fail"),
            job(day=OCT, seconds=50, status="canceled"),
            job(
                day=OCT,
                started=started,
                stopped=None,
                seconds=None,
                status="running",
                compute_credits=0.0,
            ),
        ],
    )
    workflow_runs.refresh(conn, *LOADED, "run-0")
    return conn


@pytest.mark.parametrize("table", [performance.WORKFLOW_NAME, performance.JOB_NAME])
def test_each_insights_metric_follows_its_glossary_formula(
    glossary_runs: duckdb.DuckDBPyConnection, table: str
) -> None:
    performance.refresh(glossary_runs, LOADED, "run-1")
    october = dict(
        zip(
            [c.strip() for c in COLUMNS.split(",")],
            metrics(glossary_runs, table, "2026-10", "all"),
            strict=True,
        )
    )
    # Runs: every execution, the running one included; the errored run counts as failed.
    assert (october["runs"], october["successful_runs"], october["failed_runs"]) == (6, 2, 2)
    assert (october["canceled_runs"], october["completed_runs"]) == (1, 5)
    # Success rate = Successful Runs / (All Runs - Cancelled Runs) = 2 / (6 - 1), not 2 / 4.
    assert october["success_rate"] == pytest.approx(2 / 5)
    # p50/p95 over completed runs of any outcome: 30, 50, 100, 200, 300 -> 100 and, at position
    # 0.95 x 4 = 3.8, 200 + 0.8 x 100 = 280. Over successes only (100, 200): 150 and 195.
    assert (october["p50_duration_seconds"], october["p95_duration_seconds"]) == pytest.approx(
        (100.0, 280.0)
    )
    assert (
        october["p50_successful_duration_seconds"],
        october["p95_successful_duration_seconds"],
    ) == pytest.approx((150.0, 195.0))
    # Total Credits in Insights = compute + DLC = 5 x 10 + 5; all eight components add 7 storage.
    assert (october["insights_credits"], october["total_credits"]) == pytest.approx((55.0, 62.0))
    # Trend benchmarks: September's daily p95s are 290 (Sep 7: 100 + 0.95 x 200), 477 (Sep 8:
    # 40 + 0.95 x 460) and 60: the worst is 477, not September's own p95 (460). Its daily p50s
    # are 200, 270 and 60: their median is 200.
    assert october["p95_duration_trend"] == pytest.approx(280 / 477 - 1)
    assert october["p50_duration_trend"] == pytest.approx(100 / 200 - 1)
    # The other trends compare with September's value: success rate 4 / 5; per-day credits.
    assert october["success_rate_trend"] == pytest.approx((2 / 5) / (4 / 5) - 1)
    assert october["throughput_trend"] == pytest.approx((6 / 31) / (5 / 30) - 1)
    assert october["insights_credits_trend"] == pytest.approx((55 / 31) / (50 / 30) - 1)
    assert october["total_credits_trend"] == pytest.approx((62 / 31) / (50 / 30) - 1)


def test_no_trend_against_a_previous_period_of_few_loaded_days(
    runs: duckdb.DuckDBPyConnection,
) -> None:
    # Loaded from Sep 28: September is 3 days, too few to trend against.
    performance.refresh(runs, (date(2026, 9, 28), date(2026, 10, 31)), "run-1")
    assert metrics(runs, performance.WORKFLOW_NAME, "2026-10", "default")[TRENDS:] == (None,) * 6


def test_default_branch_is_inferred_or_taken_from_the_file(runs: duckdb.DuckDBPyConnection) -> None:
    performance.refresh(runs, LOADED, "run-1")
    (inferred,) = runs.execute(
        "SELECT DISTINCT default_branch, default_branch_source"
        " FROM circleci_insights.workflow_performance"
    ).fetchall()
    # No file, no API answer stored: `main` is a conventional name the project ran on.
    assert inferred == ("main", "conventional_name")

    performance.refresh(runs, LOADED, "run-2", default_branches=[DefaultBranch("web", "feature/x")])
    assert runs.execute(
        "SELECT DISTINCT default_branch, default_branch_source"
        " FROM circleci_insights.job_performance"
    ).fetchall() == [("feature/x", "default_branches.csv")]
    # Only the feature branch's single 1000 s success is on the "default" branch now.
    assert metrics(runs, performance.WORKFLOW_NAME, "2026-10", "default")[:TRENDS] == pytest.approx(
        (1, 1, 0, 0, 1, 1.0, 1000.0, 1000.0, 1000.0, 1000.0, 1 / 31, 10.0, 10.0, 0.0)
    )


def test_a_full_rebuild_replaces_every_row_an_unchanged_refresh_none(
    runs: duckdb.DuckDBPyConnection,
) -> None:
    first = performance.refresh(runs, LOADED, "run-1")
    second = performance.refresh(runs, LOADED, "run-2")
    third = performance.refresh(runs, LOADED, "run-3", full_rebuild=True)
    # 3 periods x 2 scopes for workflow "build" and for job "build / test".
    assert {name: r.rows for name, r in first.items()} == {
        performance.WORKFLOW_NAME: 6,
        performance.JOB_NAME: 6,
    }
    periods = ("2026-09", "2026-10", "last_30_days")
    # No state yet: everything computed; nothing changed since: everything kept.
    assert [(r.full_rebuild, r.recomputed, r.kept) for r in first.values()] == [
        (True, periods, ())
    ] * 2
    assert [(r.full_rebuild, r.recomputed, r.kept, r.rows) for r in second.values()] == [
        (False, (), periods, 6)
    ] * 2
    assert [(r.full_rebuild, r.reason, r.recomputed) for r in third.values()] == [
        (True, "requested", periods)
    ] * 2
    assert runs.execute(
        "SELECT DISTINCT insights_run_id FROM circleci_insights.job_performance"
    ).fetchall() == [("run-3",)]


def test_weekly_trend_of_the_top_workflows(conn: duckdb.DuckDBPyConnection) -> None:
    monday = date(2026, 10, 5)
    insert(
        conn,
        [
            # Week of Oct 5: successes of 100 and 200 s and a 5 s failure: p95 over completed
            # runs at 0.95 x 2 = 1.9: 100 + 0.9 x 100 = 190, success rate 2/3. Week of Oct 12:
            # one 300 s success.
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
    assert points[0].p95_duration_seconds == pytest.approx(190.0)
    assert points[0].success_rate == pytest.approx(2 / 3)
    assert (points[1].p95_duration_seconds, points[1].success_rate) == (300.0, 1.0)
