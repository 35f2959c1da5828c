"""daily_usage: counts, seconds and credits per day and grain, against hand arithmetic."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from usage_assets.insights import cost, daily_usage
from usage_assets.insights.daily_usage import DAILY_USAGE
from usage_assets_tests.insights.job_rows import DAY, delete_day, insert, job, never_ran
from usage_assets_tests.lake import BACKENDS

NEXT = DAY + timedelta(days=1)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The refresh runs on the DuckDB file and on a DuckLake alike."""
    return str(request.param)


@pytest.fixture
def loaded(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    insert(
        conn,
        [
            # web / build / test on main, docker medium: four rows of DAY.
            job(seconds=60, compute_credits=10, dlc_credits=200),
            job(seconds=30, status="failed", compute_credits=5, network_credits=2),
            job(seconds=12, status="canceled", compute_credits=2),
            job(seconds=90, status="infrastructure_fail", compute_credits=15),
            # The same job on a feature branch: its own row.
            job(seconds=45, vcs_branch="feature/x", compute_credits=8, storage_credits=1),
            # A job that never ran: no job name, class or credits.
            never_ran(),
            # The next day.
            job(day=NEXT, seconds=120, compute_credits=20),
        ],
    )
    return conn


def rows(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        f"SELECT usage_date, job_name, branch, job_runs, successful_runs, failed_runs,"
        f" canceled_runs, job_seconds, compute_credits, dlc_credits, network_credits,"
        f" storage_credits, total_credits FROM {DAILY_USAGE}"
        " ORDER BY usage_date, job_name NULLS LAST, branch"
    ).fetchall()


def test_one_row_per_day_and_grain_with_counts_seconds_and_credits(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    result = daily_usage.refresh(loaded, DAY, NEXT, "run-1")
    assert rows(loaded) == [
        # feature/x: 1 success, 45 s, 8 compute + 1 storage = 9 credits.
        (DAY, "test", "feature/x", 1, 1, 0, 0, 45.0, 8.0, 0.0, 0.0, 1.0, 9.0),
        # main: 4 rows; 1 success, 2 failures (failed, infrastructure_fail), 1 canceled;
        # 60 + 30 + 12 + 90 = 192 s; compute 10 + 5 + 2 + 15 = 32; total 32 + 200 DLC + 2 net = 234.
        (DAY, "test", "main", 4, 1, 2, 1, 192.0, 32.0, 200.0, 2.0, 0.0, 234.0),
        # The never-ran row: counted as a job run with no outcome, no seconds, no credits.
        (DAY, None, "main", 1, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (NEXT, "test", "main", 1, 1, 0, 0, 120.0, 20.0, 0.0, 0.0, 0.0, 20.0),
    ]
    # 7 job rows; credits 9 + 234 + 0 + 20 = 263.
    assert (result.rows_written, result.job_runs, result.total_credits) == (4, 7, 263.0)
    assert result.rows_deleted == 0


def test_keys_carry_org_project_workflow_class_and_executor(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    daily_usage.refresh(loaded, NEXT, NEXT, "run-1")
    assert loaded.execute(
        f"SELECT organization_id, organization_name, project_id, project_name, workflow_name,"
        f" resource_class, executor, insights_run_id FROM {DAILY_USAGE}"
    ).fetchall() == [("org-1", "acme", "p-web", "web", "build", "medium", "docker", "run-1")]


def test_rerunning_a_day_replaces_it_and_leaves_other_days(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    daily_usage.refresh(loaded, DAY, NEXT, "run-1")
    before = rows(loaded)
    again = daily_usage.refresh(loaded, DAY, DAY, "run-2")
    assert rows(loaded) == before  # same numbers, no duplicates
    assert (again.rows_deleted, again.rows_written) == (3, 3)

    # DAY is reloaded with a single row: the refresh replaces its three rows, NEXT is untouched.
    delete_day(loaded, DAY)
    insert(loaded, [job(seconds=10, compute_credits=1)])
    daily_usage.refresh(loaded, DAY, DAY, "run-3")
    assert rows(loaded) == [
        (DAY, "test", "main", 1, 1, 0, 0, 10.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        (NEXT, "test", "main", 1, 1, 0, 0, 120.0, 20.0, 0.0, 0.0, 0.0, 20.0),
    ]
    assert loaded.execute(
        f"SELECT DISTINCT insights_run_id FROM {DAILY_USAGE} ORDER BY 1"
    ).fetchall() == [("run-1",), ("run-3",)]


def test_a_day_without_usage_is_emptied(loaded: duckdb.DuckDBPyConnection) -> None:
    daily_usage.refresh(loaded, DAY, NEXT, "run-1")
    delete_day(loaded, NEXT)
    result = daily_usage.refresh(loaded, NEXT, NEXT, "run-2")
    assert (result.rows_deleted, result.rows_written) == (1, 0)
    assert [r[0] for r in rows(loaded)] == [DAY, DAY, DAY]


def test_top_projects_and_per_day(loaded: duckdb.DuckDBPyConnection) -> None:
    insert(loaded, [job(project_id="p-api", project_name="api", compute_credits=500)])
    daily_usage.refresh(loaded, DAY, NEXT, "run-1")
    cost.ensure_tables(loaded)
    # api: 1 run, 500 credits; web: 7 runs, 263 credits. No costs yet: no team, no price.
    assert [
        (p.organization, p.project, p.team, p.job_runs, p.credits, p.cost)
        for p in cost.top_projects(loaded, DAY, NEXT, 10)
    ] == [
        ("acme", "api", "unassigned", 1, 500.0, None),
        ("acme", "web", "unassigned", 7, 263.0, None),
    ]
    assert len(cost.top_projects(loaded, DAY, NEXT, 1)) == 1
    # DAY: 6 web rows + 1 api = 7 rows, 243 + 500 credits; NEXT: 1 row, 20 credits.
    assert daily_usage.per_day(loaded, DAY, NEXT) == [(DAY, 7, 743.0), (NEXT, 1, 20.0)]


def test_top_projects_keep_team_and_cost_of_a_project_without_a_name(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    insert(loaded, [job(project_id="p-x", project_name=None, compute_credits=900)])
    daily_usage.refresh(loaded, DAY, NEXT, "run-1")
    cost.ensure_tables(loaded)
    loaded.execute(
        f"INSERT INTO {cost.CREDIT_COSTS} (usage_date, organization_id, cost_line, project_name,"
        " team, credits, currency, cost) SELECT ?, organization_id, ?, NULL, 'ops', 900, 'USD',"
        f" 0.54 FROM {DAILY_USAGE} WHERE project_name IS NULL LIMIT 1",
        [DAY, cost.JOB_RUNS_LINE],
    )
    (first, *_) = cost.top_projects(loaded, DAY, NEXT, 10)
    assert (first.project, first.team, first.cost, first.currency) == ("", "ops", 0.54, "USD")
