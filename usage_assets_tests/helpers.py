"""Test helpers shared across modules (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from usage_assets.circleci import ExportJob, UsageApiClient


class FakeClock:
    """A settable "now", shared by the simulator and the client so tests can jump in time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def wait_for_terminal(client: UsageApiClient, job_id: str, timeout: float = 30.0) -> ExportJob:
    """Poll until the job completes or fails (the simulator writes files in a worker thread)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get_export(job_id)
        if job.state.is_terminal:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"export {job_id} still {job.state.value} after {timeout} s")
        time.sleep(0.02)
