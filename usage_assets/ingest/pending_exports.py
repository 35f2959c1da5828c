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


@dataclass
class SensorCursor:
    after_storage_id: int | None = None
    pending: dict[str, PendingExport] = field(default_factory=dict)
    pause_until: str | None = None  # set by a 429 from the GET endpoint

    def serialize(self) -> str:
        return json.dumps(
            {
                "after_storage_id": self.after_storage_id,
                "pending": [asdict(export) for export in self.pending.values()],
                "pause_until": self.pause_until,
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, text: str | None) -> SensorCursor:
        if not text:
            return cls()
        body = json.loads(text)
        exports = [PendingExport(**_renamed(item)) for item in body.get("pending", [])]
        return cls(
            after_storage_id=body.get("after_storage_id"),
            pending={export.export_id: export for export in exports},
            pause_until=body.get("pause_until"),
        )

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
