"""A job run a newer export moved from day Y (outside the run's window) to day X: the run's
insights_daily refreshes Y as well as X, so Y's daily_usage and workflow_runs stop counting it."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from usage_assets.defs.insights.assets import insights_daily
from usage_assets.defs.partitions import daily_partitions, partition_day
from usage_assets.defs.usage.job_runs import DAYS_CHANGED_OUTSIDE_WINDOW, _days_changed_outside
from usage_assets.ingest.warehouse import load_window
from usage_assets.insights import daily_usage, workflow_runs
from usage_assets_tests.ingest.test_warehouse import JOB_ID, RUN_DATE, rows, write_part

TODAY = datetime.now(UTC).date()
DAY_Y, DAY_X = TODAY - timedelta(days=12), TODAY - timedelta(days=11)
WORKFLOW_ID = 16  # EXPORT_COLUMN_NAMES index of WORKFLOW_ID


def _stub_job_runs(part: Path) -> dg.AssetsDefinition:
    """job_runs as the real asset reports it (its metadata key and day logic), loading `part`."""

    @dg.asset(name="job_runs", partitions_def=daily_partitions)
    def job_runs(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        keys = context.partition_keys
        with warehouse.get_connection() as conn:
            report = load_window(
                conn, [("newer", part)], window_start=partition_day(keys[0]),
                window_end=partition_day(keys[-1]), run_id=context.run.run_id,
            )  # fmt: skip
        days = _days_changed_outside([report], keys)
        return dg.MaterializeResult(
            metadata={DAYS_CHANGED_OUTSIDE_WINDOW: ", ".join(map(str, days)) or "none"}
        )

    return job_runs


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "usage.duckdb"


def _counts(path: Path, job_id: str, workflow_id: str) -> tuple[int, int, int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        row = conn.execute(
            f"SELECT (SELECT coalesce(sum(job_runs), 0) FROM {daily_usage.DAILY_USAGE}"
            "   WHERE usage_date = ?),"
            " (SELECT count(*) FROM circleci.job_runs WHERE job_id = ?),"
            f" (SELECT count(*) FROM {workflow_runs.WORKFLOW_RUNS} WHERE workflow_id = ?)",
            [DAY_Y, job_id, workflow_id],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_the_day_a_job_moved_away_from_is_refreshed_in_the_same_run(
    database: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    day_y_rows = rows(DAY_Y)
    moved = list(day_y_rows[0])
    moved[RUN_DATE] = DAY_X.isoformat()
    resources = {"warehouse": DuckDBResource(database=str(database))}

    # Day Y loaded, and its insights refreshed, by an earlier run.
    first = _stub_job_runs(write_part(tmp_path / "y.csv.gz", day_y_rows))
    assert dg.materialize(
        [first, insights_daily], partition_key=DAY_Y.isoformat(), resources=resources,
        instance=instance,
    ).success  # fmt: skip
    before, _, _ = _counts(database, moved[JOB_ID], moved[WORKFLOW_ID])
    assert before == len(day_y_rows)

    # A newer export of day X dates that job run on X: this run's window is X alone.
    second = _stub_job_runs(write_part(tmp_path / "x.csv.gz", [moved]))
    result = dg.materialize(
        [second, insights_daily], partition_key=DAY_X.isoformat(), resources=resources,
        instance=instance,
    )  # fmt: skip
    assert result.success
    after, copies, workflow_rows = _counts(database, moved[JOB_ID], moved[WORKFLOW_ID])
    assert (after, copies, workflow_rows) == (len(day_y_rows) - 1, 1, 1)
    daily = next(
        m for m in result.asset_materializations_for_node("insights_daily")
        if m.asset_key == dg.AssetKey("daily_usage")
    )  # fmt: skip
    assert daily.metadata["days_refreshed_outside_window"].value == str(DAY_Y)
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
