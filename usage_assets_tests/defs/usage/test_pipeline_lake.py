"""The pipeline on a DuckLake warehouse: the same assets and checks, the warehouse resource swapped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from usage_assets.defs.constants import WAREHOUSE_POOL, range_tags
from usage_assets.defs.insights.assets import insights_daily, insights_rollups
from usage_assets.defs.resources import WarehouseResource
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.defs.usage.sensors import apply_pool_limit
from usage_assets.ingest.lake import LakeLocation, connect_lake
from usage_assets.simulator.server import SimulatorServer
from usage_assets_tests.defs.insights.test_assets import resources as insights_resources
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    FIRST,
    LAST,
    download_and_load,
    expected_job_ids,
    export,
    pipeline_resources,
)
from usage_assets_tests.lake import lake_at


def lake_warehouse(lake: LakeLocation) -> WarehouseResource:
    """The warehouse resource on `lake`, as definitions.py builds it when the lake is set."""
    return WarehouseResource(
        database=":memory:", lake_catalog_url=lake.catalog_url, lake_data_path=lake.data_path
    )


def test_download_and_load_into_a_ducklake_holds_exactly_the_simulators_rows(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, postgres_url: str
) -> None:
    lake = lake_at(postgres_url, tmp_path)
    resources = {
        **pipeline_resources(live_sim, tmp_path),
        "warehouse": lake_warehouse(lake),
    }
    assert export(live_sim, tmp_path, instance).success
    for _ in range(2):  # a re-run replaces the window: still one row per job run
        loaded = download_and_load(live_sim, tmp_path, instance, resources=resources)
        assert loaded.success
        checks = loaded.get_asset_check_evaluations()
        assert len(checks) == 4 and all(c.passed for c in checks)
        metadata = loaded.asset_materializations_for_node("job_runs")[0].metadata
        assert metadata["commit_conflicts_retried"].value == 0  # one writer: nothing lost
    expected = expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))
    with connect_lake(lake, read_only=True) as conn:
        rows = conn.execute("SELECT job_id FROM circleci.job_runs ORDER BY job_id").fetchall()
    assert [job_id for (job_id,) in rows] == expected
    # No DuckDB file was written: the warehouse is the lake.
    assert not (tmp_path / "usage.duckdb").exists()


def test_the_writer_limit_is_applied_to_the_warehouse_pool_once(
    instance: dg.DagsterInstance,
) -> None:
    storage = instance.event_log_storage
    # The default (1) leaves the pool to dagster.yaml's default_limit, as before the setting.
    assert apply_pool_limit(instance, WAREHOUSE_POOL, 1) is None
    assert apply_pool_limit(instance, WAREHOUSE_POOL, 3) is not None
    assert storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 3
    assert apply_pool_limit(instance, WAREHOUSE_POOL, 3) is None  # idempotent: nothing to do
    assert apply_pool_limit(instance, WAREHOUSE_POOL, 1) == 3  # lowered back
    assert storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1


def test_the_sensors_run_with_the_insights_refreshes_them_on_a_ducklake(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, postgres_url: str
) -> None:
    lake = lake_at(postgres_url, tmp_path)
    resources = {
        **insights_resources(live_sim, tmp_path),
        "warehouse": lake_warehouse(lake),
    }
    assert export(live_sim, tmp_path, instance).success
    every = [usage_export_job, raw_usage_files, job_runs, job_runs_checks]
    every += [insights_daily, insights_rollups]
    result = dg.materialize(
        every,
        selection=every[1:],
        resources=resources,
        instance=instance,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )
    assert result.success
    with connect_lake(lake, read_only=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM circleci.job_runs),"
            " (SELECT sum(job_runs) FROM circleci_insights.daily_usage),"
            " (SELECT count(*) FROM circleci_insights.workflow_runs)"
        ).fetchone()
    assert row is not None and row[0] == row[1] and row[2] > 0
    assert Path(tmp_path / "report" / "usage.html").is_file()
