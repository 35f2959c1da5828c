"""The sensor against a real instance and the simulator: state changes, run requests, backoff."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from usage_assets.defs.constants import EXPORT_ASSET_KEY, EXPORT_ID_TAG, WAREHOUSE_POOL, range_tags
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.jobs import download_and_load_usage
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.defs.usage.sensors import build_usage_export_sensor, run_request_for
from usage_assets.ingest.pending_exports import SensorCursor
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import SimulatorSettings
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    job_id_of,
    pipeline_resources,
)

TODAY = datetime.now(UTC).date()
FIRST = (TODAY - timedelta(days=9)).isoformat()
LAST = (TODAY - timedelta(days=8)).isoformat()


@pytest.fixture
def slow_sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        processing_time=timedelta(hours=1), rows_per_day=10, get_limit=10_000
    )
    with SimulatorServer(settings) as server:
        yield server


def create_export(sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance) -> str:
    result = dg.materialize(
        [usage_export_job],
        resources=pipeline_resources(sim, tmp_path),
        instance=instance,
        tags=range_tags(FIRST, LAST),
    )
    job_id = job_id_of(result)
    sim.simulator.store.wait_until_written(job_id)
    return job_id


def tick(
    sim: SimulatorServer,
    tmp_path: Path,
    instance: dg.DagsterInstance,
    cursor: str | None,
    *,
    max_gets_per_tick: int = 5,
    warehouse_writers: int = 1,
) -> dg.SensorResult:
    resources = pipeline_resources(sim, tmp_path)
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={k: resources[k] for k in ("circleci", "post_quota")},
    )
    sensor = build_usage_export_sensor(
        minimum_interval_seconds=30,
        max_gets_per_tick=max_gets_per_tick,
        run_retry_delay=timedelta(0),
        warehouse_writers=warehouse_writers,
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_no_pending_jobs_skips(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = tick(slow_sim, tmp_path, instance, None)
    assert result.skip_reason is not None and "no pending export jobs" in str(result.skip_reason)


def test_a_tick_sets_the_warehouse_pool_to_the_writer_count(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    tick(slow_sim, tmp_path, instance, None, warehouse_writers=2)
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    assert (info.slot_count, info.using_default_limit) == (2, False)


def test_pending_job_is_tracked_then_downloaded_once_complete(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    job_id = create_export(slow_sim, tmp_path, instance)
    first = tick(slow_sim, tmp_path, instance, None)
    assert not first.run_requests
    assert SensorCursor.parse(first.cursor).pending[job_id].state in ("created", "processing")

    slow_sim.settings.processing_time = timedelta(0)
    done = tick(slow_sim, tmp_path, instance, first.cursor)
    assert done.run_requests is not None
    (request,) = done.run_requests
    assert request.run_key == f"download:{job_id}"
    assert request.job_name == download_and_load_usage.name
    assert request.tags[EXPORT_ID_TAG] == job_id
    assert request.partition_key_range == dg.PartitionKeyRange(FIRST, LAST)
    observed = {
        (e.partition, e.metadata["state"].value)
        for e in done.asset_events
        if isinstance(e, dg.AssetObservation)
    }
    assert observed == {(FIRST, "completed"), (LAST, "completed")}
    assert SensorCursor.parse(done.cursor).pending == {}

    # Nothing left to do: the job is never requested twice.
    assert not tick(slow_sim, tmp_path, instance, done.cursor).run_requests


def test_a_tick_seeing_part_of_a_runs_materializations_tracks_the_whole_export(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    # The export run writes one materialization per partition; a tick can land between them.
    # The tick here sees only the last one, and must still download the export's whole range.
    job_id = create_export(slow_sim, tmp_path, instance)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EXPORT_ASSET_KEY), limit=10, ascending=True
    ).records
    assert [r.partition_key for r in records] == [FIRST, LAST]
    cursor = SensorCursor(after_storage_id=records[0].storage_id).serialize()

    slow_sim.settings.processing_time = timedelta(0)
    result = tick(slow_sim, tmp_path, instance, cursor)
    assert result.run_requests is not None
    (request,) = result.run_requests
    assert request.run_key == f"download:{job_id}"
    assert request.partition_key_range == dg.PartitionKeyRange(FIRST, LAST)


def test_failed_job_is_recreated_with_the_next_attempt(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    slow_sim.settings.processing_time = timedelta(0)
    slow_sim.settings.faults.job_failure_rate = 1.0
    job_id = create_export(slow_sim, tmp_path, instance)
    result = tick(slow_sim, tmp_path, instance, None)
    assert result.run_requests is not None
    (request,) = result.run_requests
    assert request.run_key == f"recreate:{job_id}"
    assert request.tags["usage/export_attempt"] == "2"
    assert request.tags["usage/recreates_export_job_id"] == job_id
    assert {e.metadata["state"].value for e in result.asset_events} == {"failed"}


def test_get_rate_limit_pauses_polling(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    create_export(slow_sim, tmp_path, instance)
    slow_sim.simulator.store.get_limiter.limit = 0
    limited = tick(slow_sim, tmp_path, instance, None)
    assert SensorCursor.parse(limited.cursor).pause_until is not None
    paused = tick(slow_sim, tmp_path, instance, limited.cursor)
    assert "paused until" in str(paused.skip_reason)


@pytest.mark.parametrize("budget", [5, 2])
def test_sensor_polls_at_most_its_get_budget_per_tick(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, budget: int
) -> None:
    for offset in range(7):
        day = (TODAY - timedelta(days=20 + offset)).isoformat()
        dg.materialize(
            [usage_export_job],
            resources=pipeline_resources(slow_sim, tmp_path),
            instance=instance,
            tags=range_tags(day, day),
        )
    before = slow_sim.simulator.store.get_limiter.used(
        "get:" + pipeline_resources(slow_sim, tmp_path)["circleci"].org_id, datetime.now(UTC)
    )
    result = tick(slow_sim, tmp_path, instance, None, max_gets_per_tick=budget)
    after = slow_sim.simulator.store.get_limiter.used(
        "get:" + pipeline_resources(slow_sim, tmp_path)["circleci"].org_id, datetime.now(UTC)
    )
    assert after - before == budget
    assert len(SensorCursor.parse(result.cursor).pending) == 7


def run_request(
    sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """Execute a download request as the daemon would: its tags, its run key on the run."""
    return dg.materialize(
        [usage_export_job, raw_usage_files, job_runs, job_runs_checks],
        selection=[raw_usage_files, job_runs, job_runs_checks],
        resources=pipeline_resources(sim, tmp_path),
        instance=instance,
        tags={**request.tags, "dagster/run_key": str(request.run_key)},
        raise_on_error=False,
    )


def test_a_failed_download_run_is_requested_again_with_a_new_run_key_a_bounded_number_of_times(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    slow_sim.settings.processing_time = timedelta(0)
    job_id = create_export(slow_sim, tmp_path, instance)
    cursor = tick(slow_sim, tmp_path, instance, None).cursor
    (request,) = SensorCursor.parse(cursor).launched
    assert request.run_key == f"download:{job_id}"
    # Every GET of the download runs fails (a 5xx burst the client's retries do not outlast).
    slow_sim.settings.faults.api_error_rate = 1.0
    keys = [request.run_key]
    for attempt in (2, 3):
        (watched,) = SensorCursor.parse(cursor).launched
        assert not run_request(slow_sim, tmp_path, instance, run_request_for(watched)).success
        result = tick(slow_sim, tmp_path, instance, cursor)
        assert result.run_requests is not None
        (retry,) = result.run_requests
        assert retry.run_key == f"download:{job_id}:{attempt}"
        assert retry.tags["usage/run_attempt"] == str(attempt)
        assert retry.tags[EXPORT_ID_TAG] == job_id
        keys.append(str(retry.run_key))
        cursor = result.cursor
    # The third attempt fails too: the sensor stops asking, and says so.
    (last,) = SensorCursor.parse(cursor).launched
    assert not run_request(slow_sim, tmp_path, instance, run_request_for(last)).success
    given_up = tick(slow_sim, tmp_path, instance, cursor)
    assert not given_up.run_requests
    assert SensorCursor.parse(given_up.cursor).launched == []
    assert len(set(keys)) == 3


def test_a_retried_download_that_succeeds_is_forgotten(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    slow_sim.settings.processing_time = timedelta(0)
    create_export(slow_sim, tmp_path, instance)
    cursor = tick(slow_sim, tmp_path, instance, None).cursor
    slow_sim.settings.faults.api_error_rate = 1.0
    (first,) = SensorCursor.parse(cursor).launched
    assert not run_request(slow_sim, tmp_path, instance, run_request_for(first)).success
    retried = tick(slow_sim, tmp_path, instance, cursor)
    slow_sim.settings.faults.api_error_rate = 0.0
    assert retried.run_requests is not None
    (retry,) = retried.run_requests
    assert run_request(slow_sim, tmp_path, instance, retry).success
    done = tick(slow_sim, tmp_path, instance, retried.cursor)
    assert not done.run_requests
    assert SensorCursor.parse(done.cursor).launched == []


def test_an_hour_of_get_500s_loses_nothing_and_spends_no_post(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    slow_sim.settings.processing_time = timedelta(0)
    job_id = create_export(slow_sim, tmp_path, instance)
    first = SensorCursor.parse(tick(slow_sim, tmp_path, instance, None).cursor)
    # The poll failed for an hour: the export was created an hour ago and every GET is a 500.
    slow_sim.settings.faults.api_error_rate = 1.0
    cursor = SensorCursor(after_storage_id=first.after_storage_id)
    (launched,) = first.launched
    cursor.track(
        dataclasses.replace(
            launched.export, seen_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()
        )
    )
    text = cursor.serialize()
    posts = slow_sim.simulator.store.post_limiter.used(
        pipeline_resources(slow_sim, tmp_path)["circleci"].org_id, datetime.now(UTC)
    )
    for _ in range(3):
        result = tick(slow_sim, tmp_path, instance, text)
        assert not result.run_requests  # no download, no re-create while the API errs
        assert result.cursor is not None
        text = result.cursor
        assert job_id in SensorCursor.parse(text).pending
    assert (
        slow_sim.simulator.store.post_limiter.used(
            pipeline_resources(slow_sim, tmp_path)["circleci"].org_id, datetime.now(UTC)
        )
        == posts
    )
    slow_sim.settings.faults.api_error_rate = 0.0
    recovered = tick(slow_sim, tmp_path, instance, text)
    assert recovered.run_requests is not None
    (request,) = recovered.run_requests
    assert request.run_key == f"download:{job_id}"
