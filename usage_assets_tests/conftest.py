"""Shared fixtures: a fake clock, a simulator on a real loopback socket, and a client for it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

# Partitions are defined at import time from the environment. Start them early enough that some
# partitions lie beyond the API's 366-day look-back, which the pipeline must refuse up front.
os.environ.setdefault("USAGE_START_DATE", "2025-06-01")
# The freshness tests evaluate the wired check at fixed times around the default noon deadline.
os.environ.setdefault("USAGE_FRESHNESS_DEADLINE_CRON", "0 12 * * *")

from usage_assets.circleci import RetryPolicy, UsageApiClient
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN, SimulatorSettings
from usage_assets_tests import postgres
from usage_assets_tests.helpers import FakeClock


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


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A temporary on-disk Dagster instance (event log, runs), like a real DAGSTER_HOME."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL for the session (see usage_assets_tests/postgres.py). Without one the
    PostgreSQL tests are skipped, except in CI, where a missing server is a failure."""
    try:
        with postgres.server_url() as url:
            yield url
    except postgres.PostgresUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test PostgreSQL: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """An empty database of its own for one test."""
    with postgres.fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def postgres_instance(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dg.DagsterInstance:
    """A Dagster instance from deploy/dagster-postgres.yaml as shipped ($DAGSTER_HOME/dagster.yaml),
    its env vars pointing at a fresh database; use it as a context manager."""
    for name, value in postgres.instance_env(postgres_url).items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(postgres.INSTANCE_FILE, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def pytest_report_header() -> str:
    """The clock the suite runs at, so a CI log shows the dates it was proven on (.ci/test-at-dates)."""
    now = datetime.now(UTC)
    return f"clock: {now:%Y-%m-%d %H:%M:%S} UTC, a {now:%A}"
