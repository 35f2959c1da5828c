"""The one daily partitioning every usage asset shares (UTC days, the last one is yesterday)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from usage_assets.config import current_config

# A range run of up to 31 daily partitions is one export window of 30 d 23:59:59, inside the API's
# 31 x 24 h limit; 32 partitions would exceed it.
MAX_PARTITIONS_PER_EXPORT = 31

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=current_config().start_date.isoformat(), timezone="UTC", end_offset=0
)


def partition_day(key: str) -> date:
    return date.fromisoformat(key)


def export_window(first_key: str, last_key: str) -> tuple[datetime, datetime]:
    """Inclusive API window for a range of daily partitions: 00:00:00 of the first day to
    23:59:59 of the last (the API treats both ends as inclusive)."""
    start = datetime.combine(partition_day(first_key), time(0), tzinfo=UTC)
    end = datetime.combine(partition_day(last_key), time(0), tzinfo=UTC) + timedelta(
        days=1, seconds=-1
    )
    return start, end


def partition_keys_between(first: date, last: date) -> list[str]:
    days = (last - first).days
    return [(first + timedelta(days=offset)).isoformat() for offset in range(days + 1)]
