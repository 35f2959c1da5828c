"""The simulator's back end: export jobs, their files, rate limits. No HTTP here (see app.py).

A job's files are written once, in a worker thread, as soon as the job is created, the way the real
service runs its query and stores the result; the job reports `processing` until both the configured
processing time has passed and the files exist. Rows are taken "as of" the creation time, so jobs
still running then appear as `running`, exactly the reason re-exports of recent days differ.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from usage_assets.circleci.models import ExportState
from usage_assets.simulator.parts import write_parts
from usage_assets.simulator.settings import SimulatorSettings
from usage_assets.simulator.synthetic import SyntheticUsage

FAILURE_REASONS = (
    "the query timed out",
    "the date range is too large",
    "an unknown error occurred",
)


class RollingWindowLimiter:
    """At most `limit` events per key in any trailing `window` (thread safe)."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, now: datetime) -> timedelta | None:
        """Record an event and return None, or return how long until one is allowed."""
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return events[0] + self.window - now if events else self.window
            events.append(now)
            return None

    def used(self, key: str, now: datetime) -> int:
        with self._lock:
            return sum(1 for moment in self._events.get(key, ()) if moment > now - self.window)


@dataclass
class SimulatedJob:
    id: str
    org_id: str
    org_ids: tuple[str, ...]
    start: datetime
    end: datetime
    created_at: datetime
    failure_reason: str | None
    empty: bool
    parts: list[Path] | None = None
    links_listed: bool = False  # a GET has listed its links (see Faults.first_listing_omits_parts)
    ready: threading.Event = field(default_factory=threading.Event)

    def state(
        self, now: datetime, processing_time: timedelta, created_phase: timedelta = timedelta(0)
    ) -> ExportState:
        """The state a GET reports: `created` during `created_phase`, then `processing` until the
        processing time has passed and the files exist, then `completed` or `failed`."""
        elapsed = now - self.created_at
        if elapsed < created_phase:
            return ExportState.CREATED
        if elapsed < processing_time or not self.ready.is_set():
            return ExportState.PROCESSING
        return ExportState.FAILED if self.failure_reason else ExportState.COMPLETED


class ExportStore:
    """Jobs and files of every org, plus the POST and GET rate limits."""

    def __init__(self, settings: SimulatorSettings, storage_dir: Path | None = None) -> None:
        self.settings = settings
        self.usage = SyntheticUsage(seed=settings.seed, rows_per_day=settings.rows_per_day)
        self._owns_storage = storage_dir is None
        self.storage_dir = storage_dir or Path(tempfile.mkdtemp(prefix="usage-api-simulator-"))
        self.post_limiter = RollingWindowLimiter(settings.post_quota, settings.post_quota_window)
        self.get_limiter = RollingWindowLimiter(settings.get_limit, settings.get_limit_window)
        self._jobs: dict[str, SimulatedJob] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(settings.seed)
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="export-writer")

    def close(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)
        if self._owns_storage:
            shutil.rmtree(self.storage_dir, ignore_errors=True)

    def chance(self, rate: float) -> bool:
        """A seeded coin flip, so fault injection is repeatable."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def create(
        self, org_id: str, start: datetime, end: datetime, shared_org_ids: tuple[str, ...]
    ) -> SimulatedJob:
        faults = self.settings.faults
        failure = None
        if self.chance(faults.job_failure_rate):
            with self._lock:
                failure = self._rng.choice(FAILURE_REASONS)
        # CircleCI's own scripts list the primary org among shared_org_ids; it is not doubled.
        org_ids = tuple(dict.fromkeys((org_id, *shared_org_ids)))
        job = SimulatedJob(
            id=str(uuid.uuid4()),
            org_id=org_id,
            org_ids=org_ids,
            start=start,
            end=end,
            created_at=self.settings.clock(),
            failure_reason=failure,
            empty=self.chance(faults.empty_export_rate),
        )
        with self._lock:
            self._jobs[job.id] = job
        self._workers.submit(self._write_files, job)
        return job

    def get(self, org_id: str, job_id: str) -> SimulatedJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.org_id == org_id else None

    def wait_until_written(self, job_id: str, timeout: float = 60.0) -> bool:
        """For tests and benchmarks: block until a job's files exist."""
        with self._lock:
            job = self._jobs[job_id]
        return job.ready.wait(timeout)

    def part_path(self, org_id: str, job_id: str, name: str) -> Path | None:
        job = self.get(org_id, job_id)
        if job is None or not job.parts:
            return None
        return next((p for p in job.parts if p.name == name), None)

    def _write_files(self, job: SimulatedJob) -> None:
        try:
            if job.failure_reason or job.empty:
                job.parts = []
                return
            rows = self.usage.rows_for_export(job.org_ids, job.start, job.end, as_of=job.created_at)
            job.parts = write_parts(
                rows,
                self.storage_dir / job.id,
                rows_per_part=self.settings.rows_per_part,
                drift=self.settings.faults.schema_drift,
                dialect=self.settings.faults.file_dialect,
            )
            for part in job.parts:
                self._damage(part)
        finally:
            job.ready.set()

    def _damage(self, part: Path) -> None:
        faults = self.settings.faults
        if self.chance(faults.truncated_part_rate):
            data = part.read_bytes()
            part.write_bytes(data[: max(len(data) // 2, 1)])
        elif self.chance(faults.corrupt_part_rate):
            damaged = bytearray(part.read_bytes())
            middle = len(damaged) // 2
            for offset in range(middle, min(middle + 64, len(damaged) - 8)):
                damaged[offset] ^= 0xFF
            part.write_bytes(bytes(damaged))
