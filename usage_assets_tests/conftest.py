"""Shared fixtures: a fake clock, a simulator on a real loopback socket, and a client for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from usage_assets.api import ExportJob, RetryPolicy, UsageApiClient
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN, SimulatorSettings


class FakeClock:
    """A settable "now", shared by the simulator and the client so tests can jump in time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))


@pytest.fixture
def sim_settings(clock: FakeClock) -> SimulatorSettings:
    return SimulatorSettings(
        processing_time=timedelta(0),
        rows_per_day=40,
        rows_per_part=50,
        get_limit=10_000,  # tests poll freely; the GET limit has its own test
        clock=clock,
    )


@pytest.fixture
def sim(sim_settings: SimulatorSettings) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_settings) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer, clock: FakeClock) -> Iterator[UsageApiClient]:
    with UsageApiClient(
        DEFAULT_TOKEN,
        DEFAULT_ORG_ID,
        base_url=sim.base_url,
        clock=clock,
        retry=RetryPolicy(max_attempts=3, base_delay_seconds=0.0),
    ) as api:
        yield api


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
