"""Hand-made `circleci.job_runs` rows for the insights tests.

`job(...)` gives one row with plain defaults (org "acme", project "web", workflow "build", job
"test", docker medium on main, a successful 60 s run costing 10 compute credits); a test overrides
only what its arithmetic is about, so every number in an assertion can be traced to a row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from usage_assets.circleci.vocabulary import CREDIT_COLUMNS
from usage_assets.ingest.duckdb_sql import transaction
from usage_assets.ingest.job_runs_table import JOB_RUNS, ensure_job_runs_table

_ids = itertools.count(1)

DAY = date(2026, 10, 5)  # a Monday

COMPONENTS = [c for c in CREDIT_COLUMNS if c != "total_credits"]


def job(
    *,
    day: date = DAY,
    workflow_id: str | None = None,
    started: datetime | None = None,
    stopped: datetime | str | None = "auto",
    seconds: float | None = 60.0,
    status: str = "success",
    workflow_ok: bool | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One job_runs row. Credits: pass components (compute_credits=..., dlc_credits=...);
    total_credits is their sum unless given."""
    number = next(_ids)
    started = started or datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)
    row: dict[str, Any] = {
        "organization_id": "org-1",
        "organization_name": "acme",
        "project_id": "p-web",
        "project_name": "web",
        "vcs_branch": "main",
        "pipeline_id": f"pipeline-{number}",
        "pipeline_number": number,
        "pipeline_trigger_source": "webhook",
        "workflow_id": workflow_id or f"wf-{number}",
        "workflow_name": "build",
        "workflow_first_job_started_at": started,
        "workflow_stopped_at": started + timedelta(seconds=seconds or 0)
        if stopped == "auto"
        else stopped,
        "is_workflow_successful": (status == "success") if workflow_ok is None else workflow_ok,
        "job_name": "test",
        "job_id": f"job-{number}",
        "job_run_date": day,
        "job_build_status": status,
        "resource_class": "medium",
        "executor": "docker",
        "parallelism": 1,
        "job_run_seconds": seconds,
        "compute_credits": 10.0,
        "usage_date": day,
    }
    row.update(columns)
    for component in COMPONENTS:
        row.setdefault(component, 0.0)
    row.setdefault("total_credits", sum(row[c] or 0 for c in COMPONENTS))
    return row


def never_ran(*, day: date = DAY, **columns: Any) -> dict[str, Any]:
    """A row of a job that never ran (blocked behind a failure): no name, class, time or credits."""
    return job(
        day=day,
        status=columns.pop("status", "blocked"),
        seconds=None,
        job_name=None,
        resource_class=None,
        executor=None,
        compute_credits=0.0,
        **columns,
    )


def insert(conn: duckdb.DuckDBPyConnection, rows: Iterable[dict[str, Any]]) -> None:
    ensure_job_runs_table(conn)
    # One transaction: on a DuckLake every autocommitted INSERT is a catalog commit of its own.
    with transaction(conn):
        for row in rows:
            columns = list(row)
            conn.execute(
                f"INSERT INTO {JOB_RUNS} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                [row[c] for c in columns],
            )


def delete_day(conn: duckdb.DuckDBPyConnection, day: date) -> None:
    conn.execute(f"DELETE FROM {JOB_RUNS} WHERE usage_date = ?", [day])


def connect(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(tmp_path / "usage.duckdb"))


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def rounded(rows: Iterable[Iterable[Any]], digits: int = 9) -> list[tuple[Any, ...]]:
    """Rows with floats rounded, so sums of decimal prices compare exactly."""
    return [
        tuple(round(value, digits) if isinstance(value, float) else value for value in row)
        for row in rows
    ]
