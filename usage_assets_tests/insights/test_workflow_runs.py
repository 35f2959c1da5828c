"""workflow_runs: one row per workflow, its outcome, duration and credits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from usage_assets.insights import workflow_runs
from usage_assets.insights.workflow_runs import WORKFLOW_RUNS
from usage_assets_tests.insights.job_rows import DAY, insert, job, never_ran
from usage_assets_tests.lake import BACKENDS

NEXT = DAY + timedelta(days=1)
NINE = datetime(DAY.year, DAY.month, DAY.day, 9, 0, tzinfo=UTC)


def runs(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        f"SELECT workflow_id, run_date, status, duration_seconds, jobs, job_seconds,"
        f" compute_credits, total_credits FROM {WORKFLOW_RUNS} ORDER BY workflow_id"
    ).fetchall()


def workflow(
    workflow_id: str, *, stopped: datetime | None, ok: bool, statuses: list[str]
) -> list[dict[str, object]]:
    """Jobs of one workflow started at 09:00; each job 60 s and 10 credits."""
    return [
        job(workflow_id=workflow_id, started=NINE, stopped=stopped, workflow_ok=ok, status=s)
        for s in statuses
    ]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The refresh runs on the DuckDB file and on a DuckLake alike."""
    return str(request.param)


def test_outcomes_durations_and_credits(conn: duckdb.DuckDBPyConnection) -> None:
    ten = NINE + timedelta(minutes=10)
    insert(
        conn,
        [
            *workflow("a-success", stopped=ten, ok=True, statuses=["success", "success"]),
            *workflow("b-failed", stopped=ten, ok=False, statuses=["success", "failed"]),
            *workflow("c-canceled", stopped=ten, ok=False, statuses=["success", "canceled"]),
            *workflow("d-running", stopped=None, ok=False, statuses=["success", "running"]),
            # A finished workflow with a job stuck queued: no failure, no cancel.
            *workflow("e-other", stopped=ten, ok=False, statuses=["success", "queued"]),
            # A failure blocks the next job: it never ran, yet it is one of the workflow's rows.
            job(
                workflow_id="f-blocked",
                started=NINE,
                stopped=ten,
                workflow_ok=False,
                status="timedout",
            ),
            never_ran(workflow_id="f-blocked", started=NINE, stopped=ten, workflow_ok=False),
        ],
    )
    written = workflow_runs.refresh(conn, DAY, DAY, "run-1")
    assert written == 6
    # 10 minutes = 600 s from first job started to stopped; two 60 s jobs = 120 job seconds and
    # 20 credits, except f-blocked whose second job never ran (60 s, 10 credits).
    assert runs(conn) == [
        ("a-success", DAY, "success", 600.0, 2, 120.0, 20.0, 20.0),
        ("b-failed", DAY, "failed", 600.0, 2, 120.0, 20.0, 20.0),
        ("c-canceled", DAY, "canceled", 600.0, 2, 120.0, 20.0, 20.0),
        ("d-running", DAY, "running", None, 2, 120.0, 20.0, 20.0),
        ("e-other", DAY, "other", 600.0, 2, 120.0, 20.0, 20.0),
        ("f-blocked", DAY, "failed", 600.0, 2, 60.0, 10.0, 10.0),
    ]


def test_a_workflow_crossing_midnight_is_one_run_dated_by_its_first_day(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    late = datetime(DAY.year, DAY.month, DAY.day, 23, 50, tzinfo=UTC)
    stopped = late + timedelta(minutes=20)
    insert(
        conn,
        [
            job(
                workflow_id="w", started=late, stopped=stopped, workflow_ok=True, compute_credits=3
            ),
            job(
                day=NEXT,
                workflow_id="w",
                started=late,
                stopped=stopped,
                workflow_ok=True,
                compute_credits=4,
            ),
        ],
    )
    workflow_runs.refresh(conn, DAY, DAY, "run-1")
    workflow_runs.refresh(conn, NEXT, NEXT, "run-2")  # touches w again: replaced, not added
    # 20 minutes = 1200 s; credits 3 + 4 = 7; dated DAY, the first job row's day.
    assert runs(conn) == [("w", DAY, "success", 1200.0, 2, 120.0, 7.0, 7.0)]


def test_rerunning_a_day_replaces_its_runs(conn: duckdb.DuckDBPyConnection) -> None:
    insert(conn, [job(workflow_id="x"), job(workflow_id="y", day=NEXT)])
    workflow_runs.refresh(conn, DAY, NEXT, "run-1")
    workflow_runs.refresh(conn, DAY, NEXT, "run-2")
    assert [r[0] for r in runs(conn)] == ["x", "y"]
    conn.execute("DELETE FROM circleci.job_runs WHERE workflow_id = 'x'")
    workflow_runs.refresh(conn, DAY, DAY, "run-3")  # the day has no workflow any more
    assert [r[0] for r in runs(conn)] == ["y"]
