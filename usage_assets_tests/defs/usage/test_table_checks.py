"""The table-wide job_runs checks: their own weekly job and schedule, never in a load's run; the
load's checks look only at its window."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from usage_assets.definitions import defs
from usage_assets.defs.usage.checks import (
    TABLE_UNIQUE_JOB_ID_CHECK,
    UNIQUE_JOB_ID_CHECK,
    job_runs_checks,
    job_runs_table_checks,
)
from usage_assets.defs.usage.jobs import check_job_runs_table
from usage_assets.defs.usage.schedules import job_runs_table_check_schedule
from usage_assets.ingest.job_runs_rules import USAGE_DATE_DRIFT, job_ids_unique
from usage_assets.ingest.warehouse import load_window
from usage_assets_tests.ingest.test_warehouse import DAY1, JOB_ID, RUN_DATE, rows, write_part
from usage_assets_tests.lake import connect_backend


def _check_nodes(job_name: str) -> set[str]:
    return set(defs.resolve_job_def(job_name).graph.node_dict)


def test_loads_run_the_window_checks_and_the_weekly_job_the_table_checks() -> None:
    load_nodes = _check_nodes("download_and_load_usage")
    assert job_runs_checks.node_def.name in load_nodes
    assert job_runs_table_checks.node_def.name not in load_nodes
    assert _check_nodes("check_job_runs_table") == {job_runs_table_checks.node_def.name}
    schedule = defs.resolve_schedule_def("job_runs_table_check_schedule")
    daily = defs.resolve_schedule_def("daily_usage_export_schedule")
    assert schedule.default_status == daily.default_status
    cron = schedule.cron_schedule
    assert isinstance(cron, str) and cron.endswith("* * 1")  # Mondays, after Sunday's re-export


def test_a_duplicate_beyond_the_window_passes_the_load_check_and_fails_the_weekly_one(
    tmp_path: Path,
) -> None:
    database = tmp_path / "w.duckdb"  # connect_backend's DuckDB file
    far_day = DAY1 - timedelta(days=30)
    stale = list(rows(DAY1)[0])
    stale[RUN_DATE] = far_day.isoformat()
    conn = connect_backend("duckdb", tmp_path, None)
    try:
        for day, part_rows in ((far_day, [stale]), (DAY1, rows(DAY1))):
            load_window(
                conn, [(f"e{day}", write_part(tmp_path / f"{day}.csv.gz", part_rows))],
                window_start=day, window_end=day, run_id=f"r{day}",
            )  # fmt: skip
        window: tuple[date, date] = (DAY1, DAY1)
        assert job_ids_unique(conn, window).passed  # what the load's blocking check sees
    finally:
        conn.close()

    checks_only = dg.Definitions(
        assets=[dg.AssetSpec("job_runs")],
        asset_checks=[job_runs_table_checks],
        jobs=[check_job_runs_table],
        resources={"warehouse": DuckDBResource(database=str(database))},
    )
    result = checks_only.resolve_job_def("check_job_runs_table").execute_in_process(
        raise_on_error=False
    )
    assert result.success  # non-blocking: a failed check does not fail the run
    by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    unique = by_name[TABLE_UNIQUE_JOB_ID_CHECK]
    assert not unique.passed
    assert stale[JOB_ID] in (unique.description or "")
    assert unique.metadata["days_to_reexport"].value == f"{far_day}, {DAY1}"
    assert UNIQUE_JOB_ID_CHECK not in by_name
    assert far_day < DAY1 - USAGE_DATE_DRIFT
    assert job_runs_table_check_schedule.job_name == "check_job_runs_table"
