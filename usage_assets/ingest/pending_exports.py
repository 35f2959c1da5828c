"""What the sensor remembers between ticks, and what it does when a job's state is known.

Pure functions over small records, so the sensor's decisions are tested without Dagster: the
sensor only fetches events, makes the GETs, and turns `Decision`s into run requests and asset
observations.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from usage_assets.circleci import ExportState

# The Usage API's query timeout; a job not finished by then never will be.
STUCK_AFTER = timedelta(hours=4)
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    first_partition: str
    last_partition: str
    seen_at: str  # ISO time the export job was created (its materialization)
    attempt: int = 1
    state: str = ExportState.CREATED.value
    last_polled_at: str | None = None

    def covers(self, other: PendingJob) -> bool:
        return (
            self.first_partition <= other.first_partition
            and other.last_partition <= self.last_partition
        )


@dataclass
class SensorCursor:
    after_storage_id: int | None = None
    pending: dict[str, PendingJob] = field(default_factory=dict)
    pause_until: str | None = None  # set by a 429 from the GET endpoint

    def serialize(self) -> str:
        return json.dumps(
            {
                "after_storage_id": self.after_storage_id,
                "pending": [asdict(job) for job in self.pending.values()],
                "pause_until": self.pause_until,
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, text: str | None) -> SensorCursor:
        if not text:
            return cls()
        body = json.loads(text)
        jobs = [PendingJob(**job) for job in body.get("pending", [])]
        return cls(
            after_storage_id=body.get("after_storage_id"),
            pending={job.job_id: job for job in jobs},
            pause_until=body.get("pause_until"),
        )

    def track(self, job: PendingJob) -> None:
        """Start polling `job`; a pending job it fully covers is superseded (its data would be
        older, and loading it after this one would overwrite newer rows). A job already pending
        keeps its poll state and widens to cover both ranges: a tick may see only some of the
        partitions of a run that is still writing them."""
        known = self.pending.get(job.job_id)
        if known is not None:
            job = replace(
                known,
                first_partition=min(known.first_partition, job.first_partition),
                last_partition=max(known.last_partition, job.last_partition),
            )
        for older_id in [
            j.job_id for j in self.pending.values() if job.covers(j) and j.job_id != job.job_id
        ]:
            del self.pending[older_id]
        self.pending[job.job_id] = job

    def due_for_poll(self, limit: int) -> list[PendingJob]:
        """Least recently polled first, so every job gets its turn under a small GET budget."""
        return sorted(self.pending.values(), key=lambda j: (j.last_polled_at or "", j.seen_at))[
            :limit
        ]


class Action(StrEnum):
    WAIT = "wait"
    DOWNLOAD = "download"
    RECREATE = "recreate"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Decision:
    action: Action
    job: PendingJob
    state_changed: bool
    reason: str = ""


def decide(
    job: PendingJob,
    state: ExportState,
    now: datetime,
    *,
    error_reason: str | None = None,
    quota_left: int,
) -> Decision:
    """What to do with a pending job whose current state was just read."""
    changed = state.value != job.state
    updated = replace(job, state=state.value, last_polled_at=now.isoformat())
    if state is ExportState.COMPLETED:
        return Decision(Action.DOWNLOAD, updated, changed)
    stuck = not state.is_terminal and now - datetime.fromisoformat(job.seen_at) > STUCK_AFTER
    if state is ExportState.FAILED or stuck:
        reason = (
            f"failed: {error_reason or 'no reason given'}"
            if state is ExportState.FAILED
            else f"stuck in {state.value} for more than {STUCK_AFTER}"
        )
        if job.attempt >= MAX_ATTEMPTS:
            return Decision(
                Action.GIVE_UP, updated, changed, f"{reason}; gave up after {job.attempt} attempts"
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
