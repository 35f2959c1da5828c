"""Exports of adjacent days that complete in one tick share one download-and-load run; a failed
grouped run is requested again as one run per export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from usage_assets.defs.constants import EXPORT_ID_TAG, EXPORT_WINDOWS_TAG, range_tags
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.defs.usage.sensors import build_usage_export_sensor, run_request_for
from usage_assets.ingest.pending_exports import (
    LaunchedRun,
    PendingExport,
    RunKind,
    RunStatus,
    SensorCursor,
    follow_up,
    format_export_windows,
    group_downloads,
    parse_export_windows,
)
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import SimulatorSettings
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    expected_job_ids,
    failure_message,
    job_id_of,
    pipeline_resources,
    warehouse_job_ids,
)

TODAY = datetime.now(UTC).date()
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def pending(export_id: str, first: str, last: str) -> PendingExport:
    return PendingExport(export_id, first, last, seen_at=NOW.isoformat())


def test_adjacent_exports_are_grouped_up_to_the_limit_and_others_stay_alone() -> None:
    a = pending("a", "2026-01-01", "2026-01-31")
    b = pending("b", "2026-02-01", "2026-03-03")
    c = pending("c", "2026-03-04", "2026-04-03")
    gap = pending("gap", "2026-04-05", "2026-04-06")  # a day missing before it
    overlap = pending("overlap", "2026-04-06", "2026-04-12")  # overlaps `gap`
    assert group_downloads([c, gap, a, overlap, b]) == [(a, b, c), (gap,), (overlap,)]
    assert group_downloads([a, b, c], limit=2) == [(a, b), (c,)]
    assert group_downloads([]) == []


def test_a_grouped_run_names_every_export_and_a_retry_splits_it() -> None:
    a = pending("a", "2026-01-01", "2026-01-31")
    b = pending("b", "2026-02-01", "2026-03-03")
    run = LaunchedRun(RunKind.DOWNLOAD, a, also=(b,))
    assert run.run_key == "download:a+b"
    assert (run.first_partition, run.last_partition) == ("2026-01-01", "2026-03-03")
    assert parse_export_windows(format_export_windows(run.exports)) == [
        ("a", "2026-01-01", "2026-01-31"),
        ("b", "2026-02-01", "2026-03-03"),
    ]
    # It survives the cursor; a single-export run serializes as before (no `also`).
    cursor = SensorCursor(launched=[run, LaunchedRun(RunKind.DOWNLOAD, a)])
    assert SensorCursor.parse(cursor.serialize()).launched == cursor.launched
    assert '"also"' in cursor.serialize() and cursor.serialize().count('"also"') == 1
    assert cursor.handled_exports() == {"a", "b"}

    failed_at = (NOW - timedelta(minutes=10)).isoformat()
    outcome = follow_up(
        LaunchedRun(RunKind.DOWNLOAD, a, also=(b,), failed_at=failed_at),
        RunStatus.FAILED,
        NOW,
        timedelta(minutes=5),
    )
    assert outcome.retry is None
    assert [r.run_key for r in outcome.requests] == ["download:a:2", "download:b:2"]


@pytest.mark.parametrize(
    "text", ["", "a", "a=2026-01-01", "a=x..2026-01-02", "=2026-01-01..2026-01-02"]
)
def test_a_malformed_windows_tag_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_export_windows(text)


@pytest.fixture
def slow_sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        processing_time=timedelta(hours=1), rows_per_day=10, get_limit=10_000
    )
    with SimulatorServer(settings) as server:
        yield server


# Three adjacent windows, then one a day apart from them.
WINDOWS = [(-30, -28), (-27, -26), (-25, -25), (-23, -22)]


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def create_exports(
    sim: SimulatorServer,
    tmp_path: Path,
    instance: dg.DagsterInstance,
    windows: list[tuple[int, int]] = WINDOWS,
) -> list[str]:
    ids = []
    for first, last in windows:
        result = dg.materialize(
            [usage_export_job],
            resources=pipeline_resources(sim, tmp_path),
            instance=instance,
            tags=range_tags(day(first), day(last)),
        )
        ids.append(job_id_of(result))
        sim.simulator.store.wait_until_written(ids[-1])
    return ids


def tick(
    sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    resources = pipeline_resources(sim, tmp_path)
    sensor = build_usage_export_sensor(
        minimum_interval_seconds=30, max_gets_per_tick=5, run_retry_delay=timedelta(0)
    )
    result = sensor(
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={k: resources[k] for k in ("circleci", "post_quota")},
        )
    )
    assert isinstance(result, dg.SensorResult)
    return result


def execute(
    sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """A download request run as the daemon would: its tags and its run key on the run."""
    return dg.materialize(
        [usage_export_job, raw_usage_files, job_runs, job_runs_checks],
        selection=[raw_usage_files, job_runs, job_runs_checks],
        resources=pipeline_resources(sim, tmp_path),
        instance=instance,
        tags={**request.tags, "dagster/run_key": str(request.run_key)},
        raise_on_error=False,
    )


def rows_by_export(tmp_path: Path) -> dict[str, tuple[str, str, int]]:
    """export id -> (first day, last day, rows) in circleci.job_runs."""
    with duckdb.connect(str(tmp_path / "usage.duckdb")) as conn:
        rows = conn.execute(
            "SELECT export_job_id, min(usage_date)::VARCHAR, max(usage_date)::VARCHAR, count(*)"
            " FROM circleci.job_runs GROUP BY ALL"
        ).fetchall()
    return {export_id: (first, last, count) for export_id, first, last, count in rows}


def test_exports_completing_in_one_tick_share_a_run_per_group_and_load_their_own_days(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    ids = create_exports(slow_sim, tmp_path, instance)
    waiting = tick(slow_sim, tmp_path, instance, None)
    assert not waiting.run_requests
    slow_sim.settings.processing_time = timedelta(0)
    done = tick(slow_sim, tmp_path, instance, waiting.cursor)
    assert done.run_requests is not None
    grouped, alone = sorted(done.run_requests, key=lambda r: len(str(r.run_key)), reverse=True)
    assert grouped.run_key == "download:" + "+".join(ids[:3])
    assert grouped.partition_key_range == dg.PartitionKeyRange(day(-30), day(-25))
    assert EXPORT_ID_TAG not in grouped.tags
    assert parse_export_windows(grouped.tags[EXPORT_WINDOWS_TAG]) == [
        (export_id, day(first), day(last))
        for export_id, (first, last) in zip(ids[:3], WINDOWS[:3], strict=True)
    ]
    assert alone.run_key == f"download:{ids[3]}"
    assert alone.partition_key_range == dg.PartitionKeyRange(day(-23), day(-22))
    assert alone.tags[EXPORT_ID_TAG] == ids[3]
    # A re-tick launches nothing new.
    assert not tick(slow_sim, tmp_path, instance, done.cursor).run_requests

    result = execute(slow_sim, tmp_path, instance, grouped)
    assert result.success, failure_message(result)
    # Each window came from its own export, every job run once.
    loaded = rows_by_export(tmp_path)
    assert {e: (first, last) for e, (first, last, _) in loaded.items()} == {
        export_id: (day(first), day(last))
        for export_id, (first, last) in zip(ids[:3], WINDOWS[:3], strict=True)
    }
    as_of = datetime.now(UTC)
    assert warehouse_job_ids(tmp_path) == expected_job_ids(slow_sim, day(-30), day(-25), as_of)
    materialized = {
        key
        for key in instance.get_materialized_partitions(job_runs.key)
        if day(-30) <= key <= day(-22)
    }
    assert materialized == {day(offset) for offset in range(-30, -24)}


def test_a_failed_grouped_run_is_retried_one_run_per_export_and_loses_no_window(
    slow_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    slow_sim.settings.processing_time = timedelta(0)
    ids = create_exports(slow_sim, tmp_path, instance, WINDOWS[1:3])
    cursor = tick(slow_sim, tmp_path, instance, None).cursor
    grouped = next(r for r in SensorCursor.parse(cursor).launched if r.also)
    # Every GET of the run fails (a 5xx burst its retries do not outlast): a clear error, and the
    # windows stay unloaded, not lost.
    slow_sim.settings.faults.api_error_rate = 1.0
    failed = execute(slow_sim, tmp_path, instance, run_request_for(grouped))
    assert not failed.success
    assert ids[0] in failure_message(failed) or "HTTP 5" in failure_message(failed)
    slow_sim.settings.faults.api_error_rate = 0.0

    retried = tick(slow_sim, tmp_path, instance, cursor)
    assert retried.run_requests is not None
    retries = {str(r.run_key): r for r in retried.run_requests}
    assert set(retries) == {f"download:{export_id}:2" for export_id in ids}
    for export_id in ids:
        request = retries[f"download:{export_id}:2"]
        assert request.tags[EXPORT_ID_TAG] == export_id
        assert execute(slow_sim, tmp_path, instance, request).success
    assert set(rows_by_export(tmp_path)) == set(ids)
    as_of = datetime.now(UTC)
    assert warehouse_job_ids(tmp_path) == expected_job_ids(slow_sim, day(-27), day(-25), as_of)
    finished = tick(slow_sim, tmp_path, instance, retried.cursor)
    assert not finished.run_requests
    assert [
        r for r in SensorCursor.parse(finished.cursor).launched if r.export.export_id in ids
    ] == []
