"""The two Dagster jobs: create an export (the POST), and download-and-load a completed one.

The sensor launches both, the schedules the first, the UI either.
"""

import dagster as dg

from usage_assets.defs.insights.assets import insights_daily, insights_rollups
from usage_assets.defs.insights.default_branches import project_default_branches
from usage_assets.defs.partitions import daily_partitions
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files

create_usage_export = dg.define_asset_job(
    "create_usage_export",
    selection=dg.AssetSelection.assets(usage_export_job),
    partitions_def=daily_partitions,
    description="One create-export POST for the selected days (at most 31 per run).",
)
# The insights ride along: the daily ones refresh the run's days, the unpartitioned roll-ups and
# the report are rebuilt once at the end (Dagster runs unpartitioned assets of a partitioned job
# once per run), so every load leaves the insights current without a second run. The steps form
# one chain (download -> load -> checks -> daily insights -> default branches -> roll-ups; the
# default branches' API calls thus happen in the run, never in a sensor tick), so nothing could run in
# parallel: one process runs them all, instead of starting a Python process per step (seconds
# each on a small box). Pools still apply to in-process steps.
download_and_load_usage = dg.define_asset_job(
    "download_and_load_usage",
    selection=dg.AssetSelection.assets(
        raw_usage_files, job_runs, insights_daily, project_default_branches, insights_rollups
    ),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Download a completed export's parts, load them into circleci.job_runs (with "
    "checks), and refresh the circleci_insights tables and the report.",
)
