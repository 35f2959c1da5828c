"""The scaling benchmark's own logic (bench/scaling.py), on a few rows: the replicated history
keeps whole workflows with fresh ids and shifted dates, and the event log is cut into the table's
rows as intended. The benchmark's figures themselves are never asserted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from bench.scaling import (
    Sample,
    new_day,
    per_row,
    replica_select,
    scaling_markdown,
    scaling_verdicts,
    spans_from_events,
)
from usage_assets.ingest.job_runs_table import JOB_RUNS, ensure_job_runs_table, job_runs_columns


def test_new_day_is_a_wednesday_at_least_three_days_back() -> None:
    for offset in range(14):
        today = date(2027, 2, 1) + timedelta(days=offset)
        day = new_day(today)
        assert day.weekday() == 2
        assert timedelta(days=3) <= today - day < timedelta(days=10)


def _seed(conn: duckdb.DuckDBPyConnection) -> None:
    """Two workflows of two jobs on 2027-03-10 (a late one ends the next day)."""
    ensure_job_runs_table(conn)
    for workflow, started in (("w1", "2027-03-10 08:00"), ("w2", "2027-03-10 23:59")):
        for job in range(2):
            at = datetime.fromisoformat(started).replace(tzinfo=UTC) + timedelta(minutes=job)
            conn.execute(
                f"INSERT INTO {JOB_RUNS} (job_id, workflow_id, pipeline_id, usage_date,"
                " job_run_started_at, export_job_id) VALUES (?, ?, ?, ?, ?, 'seed')",
                [f"{workflow}-{job}", workflow, f"p-{workflow}", at.date(), at],
            )


def _copy(conn: duckdb.DuckDBPyConnection, copy: int, fraction: float) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT job_id, workflow_id, usage_date, job_run_started_at, export_job_id FROM ("
        + replica_select(job_runs_columns(), JOB_RUNS)
        + ") ORDER BY job_run_started_at, job_id",
        {"copy": copy, "fraction": fraction, "first": date(2027, 1, 1), "last": date(2027, 3, 11)},
    ).fetchall()


def test_copies_shift_whole_weeks_with_fresh_ids() -> None:
    with duckdb.connect() as conn:
        _seed(conn)
        original = _copy(conn, 0, 1.0)
        assert [row[0] for row in original] == ["w1-0", "w1-1", "w2-0", "w2-1"]
        week_back = _copy(conn, 1, 1.0)
        assert [row[2] for row in week_back] == [date(2027, 3, 3)] * 3 + [date(2027, 3, 4)]
        assert [row[3] - timedelta(days=-7) for row in week_back] == [row[3] for row in original]
        assert not {row[0] for row in week_back} & {row[0] for row in original}
        assert len({row[1] for row in week_back}) == 2  # two workflows still
        # the export of the 31-day window the shifted day falls in, counted back from `last`
        assert {row[4] for row in week_back} == {"bench-history-0"}
        assert {row[4] for row in _copy(conn, 6, 1.0)} == {"bench-history-1"}
        # 2.0: every workflow twice, each time with ids of its own
        doubled = _copy(conn, 1, 2.0)
        assert len(doubled) == 8 and len({row[0] for row in doubled}) == 8
        # a thinned copy keeps or drops whole workflows
        for copy in range(2, 8):
            kept = _copy(conn, copy, 0.5)
            per_workflow = {row[1]: 0 for row in kept}
            for row in kept:
                per_workflow[row[1]] += 1
            assert set(per_workflow.values()) <= {2}
        # days outside [first, last] are left out
        assert _copy(conn, 20, 1.0) == []


def test_event_log_is_cut_into_the_table_rows() -> None:
    events = [
        (0.0, "raw_usage_files", "STEP_START", None),
        (1.0, "raw_usage_files", "STEP_SUCCESS", None),
        (1.0, "job_runs", "STEP_START", None),
        (3.0, "job_runs", "ASSET_MATERIALIZATION", "job_runs"),
        (3.5, "job_runs", "STEP_SUCCESS", None),
        (3.5, "job_runs_checks", "STEP_START", None),
        (4.0, "job_runs_checks", "STEP_SUCCESS", None),
        (4.0, "insights_rollups", "STEP_START", None),
        (5.0, "insights_rollups", "ASSET_MATERIALIZATION", "workflow_performance"),
        (8.0, "insights_rollups", "ASSET_MATERIALIZATION", "job_performance"),
        (8.5, "insights_rollups", "ASSET_MATERIALIZATION", "credit_costs"),
        (9.0, "insights_rollups", "ASSET_MATERIALIZATION", "team_chargeback"),
        (9.5, "insights_rollups", "ASSET_MATERIALIZATION", "usage_report"),
        (10.0, "insights_rollups", "STEP_SUCCESS", None),
    ]
    samples = [Sample(t / 4, 100 + t, 0) for t in range(41)]
    samples[30] = Sample(7.5, 900, 5 * 2**20)  # during job_performance
    rows = per_row(spans_from_events(events), samples)
    assert {row: entry["wall_s"] for row, entry in rows.items()} == {
        "load": 3.5,
        "checks": 0.5,
        "workflow_performance": 1.0,
        "job_performance": 3.0,
        "other_rollups": 1.0,
        "report": 1.0,
    }
    assert rows["job_performance"]["peak_rss_mib"] == 900
    assert rows["job_performance"]["temp_mib"] == 5
    assert rows["load"]["peak_rss_mib"] == 100 + 14


def test_the_table_names_every_size_and_the_verdicts() -> None:
    step = {"wall_s": 2.0, "peak_rss_mib": 300.0, "temp_mib": 0.0}
    sizes = {
        label: {
            "history": {
                "job_runs": rows,
                "workflow_runs": rows // 3,
                "first_day": "2026-01-01",
                "last_day": "2027-01-31",
                "duckdb_file_mib": 100,
                "setup_s": 60.0,
            },
            "run": {
                "success": True,
                "rows_loaded": 50_000,
                "wall_s": 10.0 * factor,
                "peak_rss_mib": 500 * factor,
                "temp_mib": 0,
                "steps": {row: {**step, "wall_s": 2.0 * factor} for row in ("load", "report")},
            },
        }
        for label, rows, factor in (("1M", 1_000_000, 1), ("20M", 20_000_000, 3))
    }
    verdicts = scaling_verdicts(sizes)
    assert [v["met"] for v in verdicts] == [False, False, False]  # 30 s, 1,500 MiB, 3x
    table = scaling_markdown({"sizes": sizes})
    assert table.splitlines()[0] == "| step of the daily run | 1.0 M rows | 20.0 M rows |"
    assert "| report | 2.0 s / 300 MiB | 6.0 s / 300 MiB |" in table
    assert "| job_performance | - | - |" in table
