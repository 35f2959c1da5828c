"""What the sensor remembers between ticks, and what it does when an export's state is known.

Pure functions over small records, so the sensor's decisions are tested without Dagster: the
sensor only fetches events, makes the GETs, and turns `Decision`s into run requests and asset
observations.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from usage_assets.circleci import ExportState

# The Usage API's query timeout; a job not finished by then never will be.
STUCK_AFTER = timedelta(hours=4)
MAX_ATTEMPTS = 3
# A download or re-create run that fails (a 429 it could not wait out, a burst of 5xx, a POST
# refused) is requested again, this many times in all, each with its own run key.
MAX_RUN_ATTEMPTS = 3

# How long the sensor keeps re-reading materializations after it first saw them. On PostgreSQL,
# storage ids are handed out when an event is inserted but become visible when its transaction
# commits, so id 11 can appear after id 12 was read: a cursor at 12 would skip 11 for good.
# (Dagster's backfill daemon waits behind the newest id for the same reason.) An insert's
# transaction commits in milliseconds; minutes are a wide margin, and what they cost is re-reading
# the few export materializations of that span on each tick.
CURSOR_SETTLE = timedelta(minutes=2)
# At most this many recently read records are remembered (the sensor fetches 1000 at a time, so a
# full page always holds new records); past it, the oldest are settled early.
MAX_RECENT_RECORDS = 500


@dataclass(frozen=True)
class PendingExport:
    """A CircleCI export the sensor polls, and the partitions it covers."""

    export_id: str
    first_partition: str
    last_partition: str
    seen_at: str  # ISO time the export job was created (its materialization)
    attempt: int = 1
    state: str = ExportState.CREATED.value
    last_polled_at: str | None = None

    def covers(self, other: PendingExport) -> bool:
        return (
            self.first_partition <= other.first_partition
            and other.last_partition <= self.last_partition
        )


class RunKind(StrEnum):
    DOWNLOAD = "download"
    RECREATE = "recreate"


@dataclass(frozen=True)
class LaunchedRun:
    """A run the sensor requested, watched until it succeeds or its attempts are spent."""

    kind: RunKind
    export: PendingExport
    run_attempt: int = 1
    failed_at: str | None = None  # ISO time its failure was first seen; the retry waits a bit

    @property
    def run_key(self) -> str:
        """`download:<export>` for the first attempt (as before), then `...:<attempt>`."""
        base = f"{self.kind.value}:{self.export.export_id}"
        return base if self.run_attempt == 1 else f"{base}:{self.run_attempt}"

    def retried(self) -> LaunchedRun:
        return replace(self, run_attempt=self.run_attempt + 1, failed_at=None)


class RunStatus(StrEnum):
    NOT_STARTED = "not_started"  # requested, not in the run storage yet (or still queued)
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed or canceled


@dataclass(frozen=True)
class RunFollowUp:
    """What to do about a launched run whose status was just read."""

    retry: LaunchedRun | None = None  # request this run (its new key) now
    keep: LaunchedRun | None = None  # keep watching this one
    gave_up: bool = False


def follow_up(
    run: LaunchedRun, status: RunStatus, now: datetime, retry_delay: timedelta
) -> RunFollowUp:
    """A failed run is requested again after `retry_delay`, up to MAX_RUN_ATTEMPTS in all."""
    if status is RunStatus.SUCCEEDED:
        return RunFollowUp()
    if status is not RunStatus.FAILED:
        return RunFollowUp(keep=run)
    if run.run_attempt >= MAX_RUN_ATTEMPTS:
        return RunFollowUp(gave_up=True)
    failed_at = datetime.fromisoformat(run.failed_at) if run.failed_at else now
    if now - failed_at < retry_delay:
        return RunFollowUp(keep=replace(run, failed_at=failed_at.isoformat()))
    return RunFollowUp(retry=run.retried())


@dataclass(frozen=True)
class SeenRecord:
    """An export materialization the sensor has read but may still see again (see CURSOR_SETTLE)."""

    storage_id: int
    export_id: str | None  # None: a materialization without an export id
    first_seen_at: str  # ISO time of the tick that first read it (the sensor's clock)


@dataclass
class SensorCursor:
    # Every record up to this storage id is handled, and no earlier id can still commit.
    after_storage_id: int | None = None
    pending: dict[str, PendingExport] = field(default_factory=dict)
    pause_until: str | None = None  # set by a 429 from the GET endpoint
    launched: list[LaunchedRun] = field(default_factory=list)
    # Records after `after_storage_id` already handled: re-read each tick, skipped by storage id.
    recent: list[SeenRecord] = field(default_factory=list)

    def serialize(self) -> str:
        return json.dumps(
            {
                "after_storage_id": self.after_storage_id,
                "pending": [asdict(export) for export in self.pending.values()],
                "pause_until": self.pause_until,
                "launched": [asdict(run) for run in self.launched],
                "recent": [asdict(record) for record in self.recent],
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, text: str | None) -> SensorCursor:
        if not text:
            return cls()
        body = json.loads(text)
        exports = [PendingExport(**_renamed(item)) for item in body.get("pending", [])]
        launched = [
            LaunchedRun(
                kind=RunKind(item["kind"]),
                export=PendingExport(**_renamed(item["export"])),
                run_attempt=int(item.get("run_attempt", 1)),
                failed_at=item.get("failed_at"),
            )
            for item in body.get("launched", [])  # absent in cursors of earlier versions
        ]
        return cls(
            after_storage_id=body.get("after_storage_id"),
            pending={export.export_id: export for export in exports},
            pause_until=body.get("pause_until"),
            launched=launched,
            recent=[SeenRecord(**item) for item in body.get("recent", [])],
        )

    def first_sight(self, storage_id: int, export_id: str | None, now: datetime) -> bool:
        """Remember a record read this tick; False if an earlier tick already handled it."""
        if any(record.storage_id == storage_id for record in self.recent):
            return False
        self.recent.append(SeenRecord(storage_id, export_id, now.isoformat()))
        return True

    def handled_exports(self) -> set[str]:
        """Exports this cursor handled and no longer polls (launched, finished, given up or
        superseded) whose records it still re-reads: a further materialization of one is not
        tracked again, which would poll it and request its runs again."""
        handled = {record.export_id for record in self.recent if record.export_id is not None}
        handled |= {run.export.export_id for run in self.launched}
        return handled - set(self.pending)

    def settle(self, now: datetime, settle: timedelta = CURSOR_SETTLE) -> None:
        """Move `after_storage_id` past the records first read at least `settle` ago (any
        earlier id has committed by then) and forget them, so `recent` stays small."""
        settled = [
            record.storage_id
            for record in self.recent
            if datetime.fromisoformat(record.first_seen_at) <= now - settle
        ]
        by_id = sorted(record.storage_id for record in self.recent)
        if len(by_id) > MAX_RECENT_RECORDS:
            settled.append(by_id[len(by_id) - MAX_RECENT_RECORDS - 1])
        if not settled:
            return
        self.after_storage_id = max(self.after_storage_id or 0, *settled)
        self.recent = [r for r in self.recent if r.storage_id > self.after_storage_id]

    def track(self, export: PendingExport) -> None:
        """Start polling `export`; a pending export it fully covers is superseded (its data would be
        older, and loading it after this one would overwrite newer rows). An export already pending
        keeps its poll state and widens to cover both ranges: a tick may see only some of the
        partitions of a run that is still writing them."""
        known = self.pending.get(export.export_id)
        if known is not None:
            export = replace(
                known,
                first_partition=min(known.first_partition, export.first_partition),
                last_partition=max(known.last_partition, export.last_partition),
            )
        for older_id in [
            j.export_id
            for j in self.pending.values()
            if export.covers(j) and j.export_id != export.export_id
        ]:
            del self.pending[older_id]
        self.pending[export.export_id] = export

    def due_for_poll(self, limit: int) -> list[PendingExport]:
        """Least recently polled first, so every export gets its turn under a small GET budget."""
        return sorted(self.pending.values(), key=lambda j: (j.last_polled_at or "", j.seen_at))[
            :limit
        ]


def _renamed(item: dict[str, Any]) -> dict[str, Any]:
    """A pending export as serialized; cursors written before the rename call its id `job_id`."""
    if "job_id" in item and "export_id" not in item:
        item = {("export_id" if key == "job_id" else key): value for key, value in item.items()}
    return item


class Action(StrEnum):
    WAIT = "wait"
    DOWNLOAD = "download"
    RECREATE = "recreate"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Decision:
    action: Action
    export: PendingExport
    state_changed: bool
    reason: str = ""


def decide(
    export: PendingExport,
    state: ExportState,
    now: datetime,
    *,
    error_reason: str | None = None,
    quota_left: int,
) -> Decision:
    """What to do with a pending export whose current state was just read."""
    changed = state.value != export.state
    updated = replace(export, state=state.value, last_polled_at=now.isoformat())
    if state is ExportState.COMPLETED:
        return Decision(Action.DOWNLOAD, updated, changed)
    stuck = not state.is_terminal and now - datetime.fromisoformat(export.seen_at) > STUCK_AFTER
    if state is ExportState.FAILED or stuck:
        reason = (
            f"failed: {error_reason or 'no reason given'}"
            if state is ExportState.FAILED
            else f"stuck in {state.value} for more than {STUCK_AFTER}"
        )
        if export.attempt >= MAX_ATTEMPTS:
            return Decision(
                Action.GIVE_UP,
                updated,
                changed,
                f"{reason}; gave up after {export.attempt} attempts",
            )
        if quota_left < 1:
            return Decision(
                Action.WAIT,
                updated,
                changed,
                f"{reason}; waiting for a free POST slot to re-create it",
            )
        return Decision(Action.RECREATE, updated, changed, reason)
    return Decision(Action.WAIT, updated, changed)
