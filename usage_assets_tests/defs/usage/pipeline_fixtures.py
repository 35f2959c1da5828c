"""Helpers for running the real assets against a simulator in-process."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.defs.constants import range_tags
from usage_assets.defs.partitions import export_window
from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource, RawStoreResource
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN


def pipeline_resources(
    sim: SimulatorServer, tmp_path: Path, *, max_posts: int = 10, **circleci: Any
) -> dict[str, Any]:
    """Resources of a pipeline on `tmp_path` against `sim`; `circleci` overrides settings of
    CircleCIUsageResource (links are re-read for 1 s by default, not a minute)."""
    return resources_for(sim.base_url, tmp_path, max_posts=max_posts, **circleci)


def resources_for(
    api_url: str, tmp_path: Path, *, max_posts: int = 10, **circleci: Any
) -> dict[str, Any]:
    """As pipeline_resources, from the API's URL (for a run in another process)."""
    return {
        "circleci": CircleCIUsageResource(
            token=DEFAULT_TOKEN,
            org_id=DEFAULT_ORG_ID,
            api_url=api_url,
            **{"links_recheck_seconds": 1.0, **circleci},
        ),
        "post_quota": PostQuotaResource(
            ledger_path=str(tmp_path / "quota.sqlite"), max_posts=max_posts
        ),
        "raw_store": RawStoreResource(raw_dir=str(tmp_path / "raw")),
        "warehouse": DuckDBResource(database=str(tmp_path / "usage.duckdb")),
    }


TODAY = datetime.now(UTC).date()
FIRST = (TODAY - timedelta(days=12)).isoformat()
LAST = (TODAY - timedelta(days=10)).isoformat()


def export(
    live_sim: SimulatorServer,
    tmp_path: Path,
    instance: dg.DagsterInstance,
    first: str = FIRST,
    last: str = LAST,
    **kw: int,
) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [usage_export_job],
        resources=pipeline_resources(live_sim, tmp_path, **kw),
        instance=instance,
        tags=range_tags(first, last),
        raise_on_error=False,
    )
    if result.success:
        live_sim.simulator.store.wait_until_written(job_id_of(result))
    return result


def download_and_load(
    live_sim: SimulatorServer,
    tmp_path: Path,
    instance: dg.DagsterInstance,
    first: str = FIRST,
    last: str = LAST,
    *,
    resources: dict[str, Any] | None = None,
    run_config: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [usage_export_job, raw_usage_files, job_runs, job_runs_checks],
        selection=[raw_usage_files, job_runs, job_runs_checks],
        resources=resources or pipeline_resources(live_sim, tmp_path),
        instance=instance,
        tags=range_tags(first, last),
        run_config=run_config,
        raise_on_error=False,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(
        str(event.step_failure_data.error.message)
        if event.step_failure_data and event.step_failure_data.error
        else ""
        for event in result.all_events
        if event.is_step_failure
    )


def expected_job_ids(sim: SimulatorServer, first: str, last: str, as_of: Any) -> list[str]:
    start, end = export_window(first, last)
    index = EXPORT_COLUMN_NAMES.index("JOB_ID")
    return sorted(
        row[index]
        for row in sim.simulator.store.usage.rows_for_window(
            (DEFAULT_ORG_ID,), start, end, as_of=as_of
        )
    )


def warehouse_job_ids(
    tmp_path: Path, first: date | None = None, last: date | None = None
) -> list[str]:
    with duckdb.connect(str(tmp_path / "usage.duckdb")) as conn:
        if first is None:
            rows = conn.execute("SELECT job_id FROM circleci.job_runs").fetchall()
        else:
            rows = conn.execute(
                "SELECT job_id FROM circleci.job_runs WHERE usage_date BETWEEN ? AND ?",
                [first, last],
            ).fetchall()
    return sorted(job_id for (job_id,) in rows)


def read_part_header(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return handle.readline().strip().split(",")


def job_id_of(result: dg.ExecuteInProcessResult) -> str:
    (first, *_) = result.asset_materializations_for_node("usage_export_job")
    return str(first.metadata["export_job_id"].value)


def partition_of(materialization: dg.AssetMaterialization) -> str:
    """The partition a materialization names; fails if it names none."""
    partition = materialization.partition
    assert partition is not None, f"{materialization.asset_key} materialized without a partition"
    return partition


def int_metadata(metadata: Mapping[str, dg.MetadataValue], key: str) -> int:
    """An integer metadata entry's value; fails if the entry holds anything else."""
    value = metadata[key].value
    assert isinstance(value, int), f"metadata {key!r} is {value!r}, not an int"
    return value
