"""Schedules: yesterday's export every day, a weekly re-export of the trailing seven days, and
the weekly table-wide checks of job_runs.

The weekly one exists because rows of jobs still running at export time (status `running`, no
credits yet) change afterwards; re-exporting replaces them by `job_id`. Each schedule tick is one
POST, leaving most of the daily quota for backfills from the UI.
"""

from datetime import timedelta

import dagster as dg

from usage_assets.config import current_config
from usage_assets.defs.constants import range_tags
from usage_assets.defs.usage.jobs import check_job_runs_table, create_usage_export

TRAILING_DAYS = 7

daily_usage_export_schedule = dg.build_schedule_from_partitioned_job(
    create_usage_export,
    name="daily_usage_export_schedule",
    hour_of_day=current_config().daily_schedule_hour,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Creates yesterday's usage export (one POST a day).",
)


@dg.schedule(
    name="weekly_usage_reexport_schedule",
    job=create_usage_export,
    cron_schedule=f"0 {current_config().weekly_schedule_hour} * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays: re-exports the trailing 7 days, whose late-finishing job rows have changed.",
)
def weekly_usage_reexport_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    last_day = (context.scheduled_execution_time - timedelta(days=1)).date()
    first_day = last_day - timedelta(days=TRAILING_DAYS - 1)
    return dg.RunRequest(
        run_key=f"weekly-reexport:{last_day.isoformat()}",
        tags=range_tags(first_day.isoformat(), last_day.isoformat()),
    )


# Mondays, a day after the Sunday re-export, so that its loads (which may move job runs between
# days) have normally landed before the whole table is checked.
job_runs_table_check_schedule = dg.ScheduleDefinition(
    name="job_runs_table_check_schedule",
    job=check_job_runs_table,
    cron_schedule=f"0 {current_config().weekly_schedule_hour} * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Mondays: checks the whole of circleci.job_runs (job_id unique across all days, "
    "no row without a usage_date); the loads check only their own window.",
)
