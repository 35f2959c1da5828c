"""Faults injected for real into the in-process pipeline: the simulator's fault settings, a small
file system that fills up, runs racing for one export. Each test names the defect of issue 12 it
guards; README's troubleshooting table links here."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from usage_assets.circleci import UsageApiClient
from usage_assets.defs.constants import EXPORT_ID_TAG, range_tags
from usage_assets.defs.resources import PostQuotaResource
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    FIRST,
    LAST,
    download_and_load,
    expected_job_ids,
    export,
    failure_message,
    int_metadata,
    job_id_of,
    pipeline_resources,
    resources_for,
    warehouse_job_ids,
)
from usage_assets_tests.helpers import fill_disk, small_disk


def export_ids_in_warehouse(tmp_path: Path) -> set[str]:
    with duckdb.connect(str(tmp_path / "usage.duckdb")) as conn:
        rows = conn.execute("SELECT DISTINCT export_job_id FROM circleci.job_runs").fetchall()
    return {row[0] for row in rows}


def run_logs(instance: dg.DagsterInstance) -> str:
    return " ".join(
        str(entry.user_message)
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
    )


# 12.1 ------------------------------------------------------------------------------------------


def test_links_listed_late_are_waited_for_not_taken_as_an_empty_window(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    live_sim.settings.faults.links_listed_after_seconds = 2.0
    assert export(live_sim, tmp_path, instance).success
    result = download_and_load(
        live_sim,
        tmp_path,
        instance,
        resources=pipeline_resources(live_sim, tmp_path, links_recheck_seconds=20.0),
    )
    assert result.success
    assert warehouse_job_ids(tmp_path) == expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))


def test_an_empty_reexport_keeps_the_loaded_days_and_a_later_run_recovers(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    loaded = warehouse_job_ids(tmp_path)
    assert loaded
    # The re-export completes, but lists its links later than the run keeps asking (1 s).
    live_sim.settings.faults.links_listed_after_seconds = 4.0
    again = export(live_sim, tmp_path, instance)
    assert again.success
    failed = download_and_load(live_sim, tmp_path, instance)
    assert not failed.success
    message = failure_message(failed)
    assert f"already holds {len(loaded)} job run row(s); they were kept" in message
    assert "clear_window_if_export_is_empty" in message
    assert warehouse_job_ids(tmp_path) == loaded
    # The empty answer was not kept as the export's download: once the links are listed, the
    # next run fetches and loads the export.
    (folder,) = [
        p for p in (tmp_path / "raw" / DEFAULT_ORG_ID).iterdir() if p.name == job_id_of(again)
    ]
    assert not (folder / "manifest.json").exists()
    time.sleep(4.0)
    recovered = download_and_load(live_sim, tmp_path, instance)
    assert recovered.success
    assert warehouse_job_ids(tmp_path) == loaded
    assert export_ids_in_warehouse(tmp_path) == {job_id_of(again)}


def test_clearing_days_with_an_empty_export_is_an_explicit_choice(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    live_sim.settings.faults.empty_export_rate = 1.0
    assert export(live_sim, tmp_path, instance).success
    assert not download_and_load(live_sim, tmp_path, instance).success
    assert warehouse_job_ids(tmp_path)
    cleared = download_and_load(
        live_sim,
        tmp_path,
        instance,
        run_config={"ops": {"job_runs": {"config": {"clear_window_if_export_is_empty": True}}}},
    )
    assert cleared.success
    assert warehouse_job_ids(tmp_path) == []


# 12.2 ------------------------------------------------------------------------------------------


def load_export(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, export_id: str
) -> dg.ExecuteInProcessResult:
    """A download run as the sensor launches it: tagged with the export id."""
    return dg.materialize(
        [usage_export_job, raw_usage_files, job_runs, job_runs_checks],
        selection=[raw_usage_files, job_runs, job_runs_checks],
        resources=pipeline_resources(live_sim, tmp_path),
        instance=instance,
        tags={**range_tags(FIRST, LAST), EXPORT_ID_TAG: export_id},
        raise_on_error=False,
    )


def test_the_newest_export_wins_when_the_older_one_loads_last(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    older = job_id_of(export(live_sim, tmp_path, instance))
    newer = job_id_of(export(live_sim, tmp_path, instance))
    assert load_export(live_sim, tmp_path, instance, newer).success
    late = load_export(live_sim, tmp_path, instance, older)
    assert late.success
    metadata = late.asset_materializations_for_node("job_runs")[0].metadata
    assert int_metadata(metadata, "days_kept_from_newer_exports") == 3
    assert export_ids_in_warehouse(tmp_path) == {newer}
    assert "already loaded from a newer export and kept" in run_logs(instance)


# 12.4 ------------------------------------------------------------------------------------------


def test_a_fresh_read_listing_more_parts_is_downloaded_in_full(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    # The first listing leaves out the last part, and links die while the first part downloads:
    # the fresh read lists every part, and every one of them must be fetched. Parts of 8 rows:
    # three days hold 3 parts or more whatever weekdays they are (~35 rows with a weekend).
    live_sim.settings.rows_per_part = 8
    live_sim.settings.faults.first_listing_omits_parts = 1
    live_sim.settings.url_lifetime = timedelta(seconds=1)
    live_sim.settings.faults.download_bytes_per_second = 2_000
    result = export(live_sim, tmp_path, instance)
    job = live_sim.simulator.store.get(DEFAULT_ORG_ID, job_id_of(result))
    assert job is not None and job.parts is not None and len(job.parts) >= 3
    loaded = download_and_load(live_sim, tmp_path, instance)
    assert loaded.success, failure_message(loaded)
    raw = loaded.asset_materializations_for_node("raw_usage_files")[0].metadata
    assert int_metadata(raw, "parts") == len(job.parts)
    assert warehouse_job_ids(tmp_path) == expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))


# 12.6 ------------------------------------------------------------------------------------------


def test_a_full_disk_after_the_201_still_keeps_the_created_export(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with small_disk(tmp_path / "ledger_disk", size="1m") as disk:
        store = live_sim.simulator.store
        create = store.create

        def create_then_fill_the_disk(*args: Any, **kwargs: Any) -> Any:
            job = create(*args, **kwargs)
            fill_disk(disk)  # the disk fills while the 201 travels back
            return job

        store.create = create_then_fill_the_disk  # type: ignore[method-assign]
        resources = pipeline_resources(live_sim, tmp_path)
        resources["post_quota"] = PostQuotaResource(ledger_path=str(disk / "quota.sqlite"))
        result = dg.materialize(
            [usage_export_job],
            resources=resources,
            instance=instance,
            tags=range_tags(FIRST, LAST),
            raise_on_error=False,
        )
        store.create = create  # type: ignore[method-assign]
        assert result.success
        (job_id,) = {
            str(m.metadata["export_job_id"].value)
            for m in result.asset_materializations_for_node("usage_export_job")
        }
        assert store.get(DEFAULT_ORG_ID, job_id) is not None
        logs = run_logs(instance)
        assert f"Created export job {job_id}" in logs
        assert "could not record it" in logs
        (disk / "filler.bin").unlink()
        ledger = PostQuotaLedger(
            disk / "quota.sqlite",
            api_url=live_sim.base_url,
            org_id=DEFAULT_ORG_ID,
            limit=10,
            window=timedelta(hours=24),
        )
        # The slot stays spent (reserved), never handed out again as free.
        assert [a["outcome"] for a in ledger.attempts()] == ["reserved"]
        assert ledger.status().used == 1


# 12.7 ------------------------------------------------------------------------------------------


def test_the_same_request_while_its_export_is_pending_spends_no_second_post(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    live_sim.settings.processing_time = timedelta(minutes=10)
    first = export(live_sim, tmp_path, instance)
    second = dg.materialize(
        [usage_export_job],
        resources=pipeline_resources(live_sim, tmp_path),
        instance=instance,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )
    assert first.success and second.success
    assert job_id_of(second) == job_id_of(first)
    metadata = second.asset_materializations_for_node("usage_export_job")[0].metadata
    assert metadata["reused_pending_export"].value is True
    assert (
        metadata["requested_at"]
        == (first.asset_materializations_for_node("usage_export_job")[0].metadata["requested_at"])
    )
    assert live_sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC)) == 1
    # Another window is another request.
    other = export(live_sim, tmp_path, instance, first=FIRST, last=FIRST)
    assert other.success and job_id_of(other) != job_id_of(first)


def test_an_export_already_completed_is_exported_again(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    first = export(live_sim, tmp_path, instance)
    second = export(live_sim, tmp_path, instance)
    assert job_id_of(second) != job_id_of(first)
    assert live_sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC)) == 2


# 12.9 ------------------------------------------------------------------------------------------


def test_a_get_answered_429_is_retried_after_retry_after_inside_the_run(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = export(live_sim, tmp_path, instance)
    live_sim.settings.get_limit = 1
    live_sim.settings.get_limit_window = timedelta(seconds=2)
    live_sim.simulator.store.get_limiter.limit = 1
    live_sim.simulator.store.get_limiter.window = timedelta(seconds=2)
    with UsageApiClient(DEFAULT_TOKEN, DEFAULT_ORG_ID, base_url=live_sim.base_url) as client:
        client.get_export(job_id_of(result))  # spends the GET budget: the run's GET gets 429
    loaded = download_and_load(live_sim, tmp_path, instance)
    assert loaded.success, failure_message(loaded)
    assert warehouse_job_ids(tmp_path) == expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))


# 12.10 -----------------------------------------------------------------------------------------


def test_a_trickling_download_is_abandoned_and_retried_from_a_fresh_link(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    live_sim.settings.faults.download_bytes_per_second = 300
    resources = pipeline_resources(
        live_sim, tmp_path, download_min_bytes_per_second=2_000, download_grace_seconds=0.5
    )
    started = time.monotonic()
    result = download_and_load(live_sim, tmp_path, instance, resources=resources)
    assert time.monotonic() - started < 90
    assert not result.success
    message = failure_message(result)
    assert "too slow" in message and "again from a fresh link" in message
    assert "reading fresh download links" in run_logs(instance)
    assert not list((tmp_path / "raw").rglob("part_*"))  # nothing half-written is kept
    assert not list((tmp_path / "raw").rglob("manifest.json"))


# 12.11 -----------------------------------------------------------------------------------------


def download_in_own_process(api_url: str, tmp_path: str, export_id: str) -> tuple[bool, str, int]:
    """One raw_usage_files run in a process of its own, as Dagster's run workers are (Dagster's
    in-process execution is not thread safe): (success, failure message, rows)."""
    with dg.instance_for_test() as own_instance:
        result = dg.materialize(
            [usage_export_job, raw_usage_files],
            selection=[raw_usage_files],
            resources=resources_for(api_url, Path(tmp_path)),
            instance=own_instance,
            tags={**range_tags(FIRST, LAST), EXPORT_ID_TAG: export_id},
            raise_on_error=False,
        )
        rows = (
            int_metadata(
                result.asset_materializations_for_node("raw_usage_files")[0].metadata, "rows"
            )
            if result.success
            else -1
        )
        return result.success, failure_message(result), rows


def test_two_runs_downloading_the_same_export_do_not_break_each_other(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    export_id = job_id_of(export(live_sim, tmp_path, instance))
    live_sim.settings.faults.download_bytes_per_second = 20_000  # each run takes a while
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        futures = [
            pool.submit(download_in_own_process, live_sim.base_url, str(tmp_path), export_id)
            for _ in range(2)
        ]
        outcomes = [future.result(timeout=180) for future in futures]
    expected_rows = len(expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC)))
    assert outcomes == [(True, "", expected_rows)] * 2
    assert load_export(live_sim, tmp_path, instance, export_id).success


# Disk full, DuckDB locked ----------------------------------------------------------------------


def test_a_full_disk_during_download_and_during_load_fails_clearly_and_loses_nothing(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    # Raw files, staging and the warehouse all live on one small file system.
    with small_disk(tmp_path / "data", size="24m") as data:
        assert export(live_sim, data, instance).success
        assert download_and_load(live_sim, data, instance).success
        loaded = warehouse_job_ids(data)

        newer = job_id_of(export(live_sim, data, instance))
        filler = fill_disk(data)
        no_room = download_and_load(live_sim, data, instance)
        assert not no_room.success
        message = failure_message(no_room)
        assert f"Export {newer} could not be written" in message and "Free space" in message
        assert not (data / "raw" / DEFAULT_ORG_ID / newer).exists()  # no half download kept
        filler.unlink()

        downloaded = dg.materialize(
            [usage_export_job, raw_usage_files],
            selection=[raw_usage_files],
            resources=pipeline_resources(live_sim, data),
            instance=instance,
            tags=range_tags(FIRST, LAST),
            raise_on_error=False,
        )
        assert downloaded.success
        filler = fill_disk(data)
        load = download_and_load(live_sim, data, instance)
        filler.unlink()
        assert not load.success
        assert "the disk filled up during the load" in failure_message(load)
        assert warehouse_job_ids(data) == loaded
        assert export_ids_in_warehouse(data) != {newer}
        # With room again, the same export loads.
        assert download_and_load(live_sim, data, instance).success
        assert export_ids_in_warehouse(data) == {newer}
        assert warehouse_job_ids(data) == loaded


def hold_warehouse(database: str, seconds: float) -> None:
    """Another process (a notebook, say) holding the DuckDB file open for a while."""
    with duckdb.connect(database) as conn:
        conn.execute("SELECT 1")
        time.sleep(seconds)


def test_a_load_waits_for_a_warehouse_another_process_holds_for_a_while(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    loaded = warehouse_job_ids(tmp_path)
    again = job_id_of(export(live_sim, tmp_path, instance))
    holder = multiprocessing.get_context("spawn").Process(
        target=hold_warehouse, args=(str(tmp_path / "usage.duckdb"), 4.0)
    )
    holder.start()
    try:
        time.sleep(1.5)  # the holder has the file
        result = download_and_load(live_sim, tmp_path, instance)
    finally:
        holder.join(timeout=30)
    assert result.success, failure_message(result)
    assert warehouse_job_ids(tmp_path) == loaded
    assert export_ids_in_warehouse(tmp_path) == {again}
