"""The Dagster-side contract strings, each spelled once: groups, owners, pools, run tags and the
metadata keys that runs and the sensor read back from the event log.

Their values are part of a deployment's history (tags on old runs, metadata on old
materializations, pool limits in dagster.yaml): renaming one is a migration, not a refactor.
"""

from __future__ import annotations

import dagster as dg

# Asset groups, as the UI's asset graph shows them.
USAGE_GROUP = "circleci_usage"
INSIGHTS_GROUP = "circleci_insights"
OWNERS = ["team:data-platform"]

# Concurrency pools (limits in dagster.yaml): one create-export POST at a time, so the quota
# check-then-POST cannot race; one writer of the DuckDB warehouse at a time (DuckDB admits one
# writing process), or USAGE_WAREHOUSE_WRITERS on a DuckLake (set on the instance by the export
# sensor, see sensors.apply_pool_limit).
POST_POOL = "circleci_export_post"
WAREHOUSE_POOL = "usage_warehouse_writer"

# Dagster's own tags for a run over a partition range (what a single-run backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Ours: the export a download run loads, and the re-create chain of a failed export.
EXPORT_ID_TAG = "usage/export_job_id"
RECREATES_TAG = "usage/recreates_export_job_id"
ATTEMPT_TAG = "usage/export_attempt"
# Which try of a sensor-launched download or re-create run this is (1, 2, ...).
RUN_ATTEMPT_TAG = "usage/run_attempt"

# The export asset, and the metadata its materializations and observations carry.
EXPORT_ASSET_KEY = dg.AssetKey("usage_export_job")
EXPORT_ID_METADATA = "export_job_id"
# Every partition's materialization names the whole range its export covers, so a reader that
# sees only some of a run's materializations (the sensor, mid-run) still knows all of it.
PARTITION_RANGE_METADATA = "partition_range"
# When the export job was created (the time of our POST): loads let the newest export win by it.
EXPORT_CREATED_AT_METADATA = "requested_at"
# True when the run reused a pending export of the same request instead of POSTing.
REUSED_METADATA = "reused_pending_export"
STATE_METADATA = "state"
ATTEMPT_METADATA = "attempt"
RECREATES_METADATA = "recreates_export_job_id"


def range_tags(first: str, last: str) -> dict[str, str]:
    """The tags that make a run cover partitions `first` .. `last`."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}
