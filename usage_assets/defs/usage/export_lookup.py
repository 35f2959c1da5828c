"""Which export job holds the data for which partitions.

`usage_export_job` records the job id and window on every partition it covers. Downstream runs
launched by the sensor carry the job id in a tag; runs launched by hand find the latest job of each
partition in the event log instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from usage_assets.circleci.timestamps import parse_rfc3339
from usage_assets.defs.constants import (
    EXPORT_ASSET_KEY,
    EXPORT_CREATED_AT_METADATA,
    EXPORT_ID_METADATA,
)

_RANGE_SEPARATOR = " .. "


def format_partition_range(first: str, last: str) -> str:
    return f"{first}{_RANGE_SEPARATOR}{last}"


def parse_partition_range(text: str) -> tuple[str, str] | None:
    """(first, last) partition keys of a `partition_range` value, None if it is not one."""
    first, separator, last = text.partition(_RANGE_SEPARATOR)
    return (first, last) if separator and first and last else None


@dataclass(frozen=True)
class ExportAssignment:
    """An export job, when it was created, and the run's partitions it supplies."""

    job_id: str
    partition_keys: tuple[str, ...]
    created_at: datetime | None = None


@dataclass(frozen=True)
class ExportSeen:
    """An export job as a `usage_export_job` materialization recorded it."""

    job_id: str
    created_at: datetime


def _created_at(record: dg.EventLogRecord, materialization: dg.AssetMaterialization) -> datetime:
    """The export's creation time as its materialization recorded it (older records lack it:
    the materialization's own time, seconds after the POST, stands in)."""
    value = materialization.metadata.get(EXPORT_CREATED_AT_METADATA)
    if value is not None:
        try:
            return parse_rfc3339(str(value.value))
        except ValueError:
            pass
    return datetime.fromtimestamp(record.timestamp, tz=UTC)


def latest_export_job_by_partition(
    instance: dg.DagsterInstance, partition_keys: Sequence[str]
) -> dict[str, ExportSeen]:
    """partition key -> the export of its newest `usage_export_job` materialization."""
    found: dict[str, ExportSeen] = {}
    cursor = None
    wanted = set(partition_keys)
    while wanted - set(found):
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=EXPORT_ASSET_KEY, asset_partitions=list(wanted - set(found))
            ),
            limit=1000,
            cursor=cursor,
            ascending=False,
        )
        for record in result.records:
            materialization = record.asset_materialization
            if (
                materialization is None
                or record.partition_key is None
                or record.partition_key in found
            ):
                continue
            job_id = materialization.metadata.get(EXPORT_ID_METADATA)
            if job_id is not None:
                found[record.partition_key] = ExportSeen(
                    str(job_id.value), _created_at(record, materialization)
                )
        if not result.has_more:
            break
        cursor = result.cursor
    return found


def assign_exports(
    instance: dg.DagsterInstance, partition_keys: Sequence[str], tagged_job_id: str | None
) -> list[ExportAssignment]:
    """Group the run's partitions by the export job that supplies them.

    A tagged run (from the sensor) uses the tagged job for every partition. Otherwise each partition
    uses its newest export job; partitions without one fail the run with a message saying what to do.
    """
    if tagged_job_id:
        return [
            ExportAssignment(
                tagged_job_id,
                tuple(partition_keys),
                export_created_at(instance, tagged_job_id, partition_keys),
            )
        ]
    by_partition = latest_export_job_by_partition(instance, partition_keys)
    missing = [key for key in partition_keys if key not in by_partition]
    if missing:
        raise dg.Failure(
            description=(
                f"{len(missing)} partition(s) have no export job yet ({_span(missing)}). "
                "Materialize usage_export_job for them first; the sensor then downloads and loads "
                "them when CircleCI finishes the export."
            ),
            allow_retries=False,
        )
    grouped: dict[ExportSeen, list[str]] = {}
    for key in partition_keys:
        grouped.setdefault(by_partition[key], []).append(key)
    return [
        ExportAssignment(seen.job_id, tuple(keys), seen.created_at)
        for seen, keys in grouped.items()
    ]


def export_created_at(
    instance: dg.DagsterInstance, job_id: str, partition_keys: Sequence[str]
) -> datetime | None:
    """When export `job_id` was created, from the `usage_export_job` materialization that
    recorded it on one of these partitions (None if the event log has none)."""
    if not partition_keys:
        return None
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EXPORT_ASSET_KEY, asset_partitions=[min(partition_keys)]),
        limit=100,
        ascending=False,
    )
    for record in result.records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        value = materialization.metadata.get(EXPORT_ID_METADATA)
        if value is not None and str(value.value) == job_id:
            return _created_at(record, materialization)
    return None


def _span(keys: Sequence[str]) -> str:
    ordered = sorted(keys)
    return ordered[0] if len(ordered) == 1 else f"{ordered[0]} .. {ordered[-1]}"
