"""The local harness behind `make demo` and the end-to-end test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from usage_assets.config import load_config
from usage_assets.dev.local_stack import schedule_hours_clear_of


@pytest.mark.parametrize("hour", [0, 5, 6, 7, 11, 12, 18, 23])
def test_the_stack_keeps_the_schedules_clear_of_the_hours_it_runs_in(hour: int) -> None:
    """Whatever time a demo or a test starts, no schedule tick falls in the next 11 hours, so
    the only POSTs are the ones it launches."""
    now = datetime(2027, 1, 3, hour, 59, tzinfo=UTC)  # a Sunday: the weekly schedule's day
    config = load_config(schedule_hours_clear_of(now), today=now.date())
    for scheduled in (config.daily_schedule_hour, config.weekly_schedule_hour):
        next_tick = now.replace(hour=scheduled, minute=0)
        if next_tick <= now:
            next_tick += timedelta(days=1)
        assert next_tick - now > timedelta(hours=11)
