"""The simulator the in-process pipeline tests run against."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import SimulatorSettings


@pytest.fixture
def live_sim() -> Iterator[SimulatorServer]:
    # Parts of 20 rows: three days that include a weekend hold ~35 rows, still two parts or more.
    settings = SimulatorSettings(
        processing_time=timedelta(0), rows_per_day=30, rows_per_part=20, get_limit=10_000
    )
    with SimulatorServer(settings) as server:
        yield server
