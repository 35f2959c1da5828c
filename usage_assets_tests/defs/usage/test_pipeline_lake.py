"""The pipeline on a DuckLake warehouse: the same assets and checks, the warehouse resource swapped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from usage_assets.defs.constants import WAREHOUSE_POOL
from usage_assets.defs.resources import WarehouseResource
from usage_assets.defs.usage.sensors import apply_pool_limit
from usage_assets.ingest.lake import connect_lake
from usage_assets.simulator.server import SimulatorServer
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    FIRST,
    LAST,
    download_and_load,
    expected_job_ids,
    export,
    pipeline_resources,
)
from usage_assets_tests.lake import lake_at


def test_download_and_load_into_a_ducklake_holds_exactly_the_simulators_rows(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, postgres_url: str
) -> None:
    lake = lake_at(postgres_url, tmp_path)
    resources = {
        **pipeline_resources(live_sim, tmp_path),
        "warehouse": WarehouseResource(
            database=":memory:", lake_catalog_url=lake.catalog_url, lake_data_path=lake.data_path
        ),
    }
    assert export(live_sim, tmp_path, instance).success
    for _ in range(2):  # a re-run replaces the window: still one row per job run
        loaded = download_and_load(live_sim, tmp_path, instance, resources=resources)
        assert loaded.success
        checks = loaded.get_asset_check_evaluations()
        assert len(checks) == 4 and all(c.passed for c in checks)
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
