"""The sensor's decisions, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from usage_assets.circleci import ExportState
from usage_assets.ingest.pending_exports import (
    CURSOR_SETTLE,
    MAX_ATTEMPTS,
    MAX_RECENT_RECORDS,
    MAX_RUN_ATTEMPTS,
    Action,
    LaunchedRun,
    PendingExport,
    RunFollowUp,
    RunKind,
    RunStatus,
    SensorCursor,
    decide,
    follow_up,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def job(**overrides: object) -> PendingExport:
    fields: dict[str, object] = {
        "export_id": "j1",
        "first_partition": "2026-11-01",
        "last_partition": "2026-11-10",
        "seen_at": (NOW - timedelta(minutes=5)).isoformat(),
    }
    fields.update(overrides)
    return PendingExport(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "pending", "quota_left", "action", "changed"),
    [
        (ExportState.CREATED, job(), 5, Action.WAIT, False),
        (ExportState.PROCESSING, job(), 5, Action.WAIT, True),
        (ExportState.COMPLETED, job(state="processing"), 0, Action.DOWNLOAD, True),
        (ExportState.FAILED, job(), 5, Action.RECREATE, True),
        (ExportState.FAILED, job(), 0, Action.WAIT, True),
        (ExportState.FAILED, job(attempt=MAX_ATTEMPTS), 5, Action.GIVE_UP, True),
        (
            ExportState.PROCESSING,
            job(state="processing", seen_at=(NOW - timedelta(hours=4, minutes=1)).isoformat()),
            5,
            Action.RECREATE,
            False,
        ),
    ],
)
def test_decide(
    state: ExportState, pending: PendingExport, quota_left: int, action: Action, changed: bool
) -> None:
    decision = decide(pending, state, NOW, error_reason="boom", quota_left=quota_left)
    assert (decision.action, decision.state_changed) == (action, changed)
    assert decision.export.state == state.value
    assert decision.export.last_polled_at == NOW.isoformat()


def test_failure_reasons_are_explained() -> None:
    assert (
        "boom" in decide(job(), ExportState.FAILED, NOW, error_reason="boom", quota_left=1).reason
    )
    stuck = decide(
        job(seen_at=(NOW - timedelta(hours=5)).isoformat()), ExportState.CREATED, NOW, quota_left=1
    )
    assert "stuck in created" in stuck.reason
    assert (
        "waiting for a free POST slot"
        in decide(job(), ExportState.FAILED, NOW, quota_left=0).reason
    )


def test_cursor_round_trips_and_newer_covering_jobs_supersede_older_ones() -> None:
    cursor = SensorCursor(after_storage_id=7)
    cursor.track(job(export_id="old", first_partition="2026-11-03", last_partition="2026-11-05"))
    cursor.track(job(export_id="other", first_partition="2026-11-20", last_partition="2026-11-21"))
    cursor.track(job(export_id="new"))
    assert set(cursor.pending) == {"other", "new"}
    again = SensorCursor.parse(cursor.serialize())
    assert again.after_storage_id == 7 and again.pending == cursor.pending
    assert SensorCursor.parse(None).pending == {}


def test_tracking_a_pending_job_again_widens_it_and_keeps_its_poll_state() -> None:
    cursor = SensorCursor()
    polled = NOW.isoformat()
    cursor.track(
        job(
            export_id="a",
            first_partition="2026-10-01",
            last_partition="2026-10-11",
            state="processing",
            last_polled_at=polled,
        )
    )
    cursor.track(job(export_id="a", first_partition="2026-10-12", last_partition="2026-10-31"))
    tracked = cursor.pending["a"]
    assert (tracked.first_partition, tracked.last_partition) == ("2026-10-01", "2026-10-31")
    assert (tracked.state, tracked.last_polled_at) == ("processing", polled)


def test_least_recently_polled_jobs_go_first() -> None:
    cursor = SensorCursor()
    cursor.track(
        job(
            export_id="a",
            first_partition="2026-10-01",
            last_partition="2026-10-01",
            last_polled_at=NOW.isoformat(),
        )
    )
    cursor.track(job(export_id="b", first_partition="2026-10-02", last_partition="2026-10-02"))
    cursor.track(
        job(
            export_id="c",
            first_partition="2026-10-03",
            last_partition="2026-10-03",
            last_polled_at=(NOW - timedelta(minutes=1)).isoformat(),
        )
    )
    assert [j.export_id for j in cursor.due_for_poll(2)] == ["b", "c"]


def test_a_cursor_written_before_the_rename_still_parses() -> None:
    """Deployed sensors keep their cursor across the upgrade: `job_id` reads as `export_id`."""
    old = (
        '{"after_storage_id": 7, "pause_until": null, "pending": [{"attempt": 1,'
        ' "first_partition": "2026-11-01", "job_id": "j1", "last_partition": "2026-11-02",'
        ' "last_polled_at": null, "seen_at": "2026-11-03T06:00:00+00:00", "state": "processing"}]}'
    )
    cursor = SensorCursor.parse(old)
    assert cursor.after_storage_id == 7
    assert cursor.pending["j1"].export_id == "j1"
    assert SensorCursor.parse(cursor.serialize()) == cursor


RUN_EXPORT = PendingExport(
    export_id="e1",
    first_partition="2026-11-01",
    last_partition="2026-11-02",
    seen_at=NOW.isoformat(),
)


@pytest.mark.parametrize(
    ("status", "attempt", "failed_minutes_ago", "expected"),
    [
        (RunStatus.SUCCEEDED, 1, None, "forget"),
        (RunStatus.IN_PROGRESS, 1, None, "keep"),
        (RunStatus.NOT_STARTED, 1, None, "keep"),
        (RunStatus.FAILED, 1, None, "keep"),  # just seen failing: wait the delay first
        (RunStatus.FAILED, 1, 4, "keep"),
        (RunStatus.FAILED, 1, 6, "retry"),
        (RunStatus.FAILED, 2, 6, "retry"),
        (RunStatus.FAILED, MAX_RUN_ATTEMPTS, 60, "give up"),
    ],
)
def test_a_failed_launched_run_is_retried_after_the_delay_within_its_attempts(
    status: RunStatus, attempt: int, failed_minutes_ago: int | None, expected: str
) -> None:
    now = NOW + timedelta(hours=1)
    failed_at = (
        (now - timedelta(minutes=failed_minutes_ago)).isoformat()
        if failed_minutes_ago is not None
        else None
    )
    run = LaunchedRun(RunKind.DOWNLOAD, RUN_EXPORT, run_attempt=attempt, failed_at=failed_at)
    outcome = follow_up(run, status, now, timedelta(minutes=5))
    if expected == "forget":
        assert outcome == RunFollowUp()
    elif expected == "keep":
        assert outcome.keep is not None and outcome.retry is None
        if status is RunStatus.FAILED:
            assert outcome.keep.failed_at is not None
    elif expected == "retry":
        assert outcome.retry is not None
        assert outcome.retry.run_attempt == attempt + 1
        assert outcome.retry.run_key == f"download:e1:{attempt + 1}"
    else:
        assert outcome.gave_up and outcome.retry is None and outcome.keep is None


def test_launched_runs_survive_the_cursor_and_old_cursors_have_none() -> None:
    cursor = SensorCursor(launched=[LaunchedRun(RunKind.RECREATE, RUN_EXPORT, run_attempt=2)])
    again = SensorCursor.parse(cursor.serialize())
    assert again.launched == cursor.launched
    assert again.launched[0].run_key == "recreate:e1:2"
    assert SensorCursor.parse('{"pending": []}').launched == []


def test_records_read_recently_are_skipped_then_settled_and_forgotten() -> None:
    cursor = SensorCursor(after_storage_id=10)
    assert cursor.first_sight(12, "a", NOW)
    assert not cursor.first_sight(12, "a", NOW + timedelta(seconds=30))  # re-read: skipped
    cursor.settle(NOW + timedelta(seconds=30))
    assert cursor.after_storage_id == 10  # 11 may still commit: keep reading after 10
    assert cursor.first_sight(11, "b", NOW + timedelta(seconds=30))  # the late commit
    cursor.settle(NOW + CURSOR_SETTLE)
    assert (cursor.after_storage_id, [r.storage_id for r in cursor.recent]) == (12, [])
    parsed = SensorCursor.parse(cursor.serialize())
    assert (parsed.after_storage_id, parsed.recent) == (12, [])


def test_the_records_remembered_stay_bounded() -> None:
    cursor = SensorCursor()
    for storage_id in range(1, MAX_RECENT_RECORDS + 11):
        cursor.first_sight(storage_id, f"e{storage_id}", NOW)
    cursor.settle(NOW)  # none is old enough, but the list is capped
    assert len(cursor.recent) == MAX_RECENT_RECORDS
    assert cursor.after_storage_id == 10
    assert min(r.storage_id for r in cursor.recent) == 11


def test_exports_already_handled_are_not_tracked_again() -> None:
    cursor = SensorCursor(
        pending={"polled": job(export_id="polled")},
        launched=[LaunchedRun(RunKind.DOWNLOAD, job(export_id="launched"))],
    )
    cursor.first_sight(5, "finished", NOW)  # read earlier, downloaded, forgotten since
    cursor.first_sight(6, "polled", NOW)
    assert cursor.handled_exports() == {"finished", "launched"}


def test_a_cursor_written_before_the_trailing_window_still_parses() -> None:
    cursor = SensorCursor.parse('{"after_storage_id": 7, "pending": []}')
    assert (cursor.after_storage_id, cursor.recent) == (7, [])
