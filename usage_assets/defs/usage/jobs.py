"""The Dagster jobs: create an export (the POST), download-and-load a completed one, and the
weekly table-wide checks of job_runs.

The sensor launches the first two, the schedules the first and the last, the UI any.
"""

import dagster as dg

from usage_assets.defs.insights.assets import insights_daily, insights_rollups
from usage_assets.defs.insights.default_branches import project_default_branches
from usage_assets.defs.partitions import daily_partitions
from usage_assets.defs.usage.checks import job_runs_table_checks
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
    # The assets bring their checks, except the table-wide ones: they scan the whole table, so
    # they run weekly (check_job_runs_table), not in every load.
    selection=dg.AssetSelection.assets(
        raw_usage_files, job_runs, insights_daily, project_default_branches, insights_rollups
    )
    - dg.AssetSelection.checks(job_runs_table_checks),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Download a completed export's parts, load them into circleci.job_runs (with "
    "checks), and refresh the circleci_insights tables and the report.",
)

check_job_runs_table = dg.define_asset_job(
    "check_job_runs_table",
    selection=dg.AssetSelection.checks(job_runs_table_checks),
    description="The table-wide invariants of circleci.job_runs (one row per job_id across all "
    "days, no row without a usage_date): a scan of the whole table, run weekly.",
)
