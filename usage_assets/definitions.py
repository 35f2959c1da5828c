"""The Dagster code location: assets, checks, jobs, sensor, schedules and resources."""

import os

import dagster as dg

from usage_assets.config import PipelineConfig, current_config
from usage_assets.defs.freshness import build_freshness_sensor
from usage_assets.defs.insights.assets import insights_daily, insights_rollups
from usage_assets.defs.insights.automation import insights_automation_sensor
from usage_assets.defs.insights.default_branches import project_default_branches
from usage_assets.defs.resources import (
    QUOTA_LEDGER_URL_ENV,
    CircleCIUsageResource,
    InsightsResource,
    PostQuotaResource,
    RawStoreResource,
    WarehouseResource,
)
from usage_assets.defs.usage.checks import (
    job_runs_checks,
    job_runs_freshness_checks,
    job_runs_table_checks,
)
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.jobs import (
    check_job_runs_table,
    create_usage_export,
    download_and_load_usage,
)
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.defs.usage.schedules import (
    daily_usage_export_schedule,
    job_runs_table_check_schedule,
    weekly_usage_reexport_schedule,
)
from usage_assets.defs.usage.sensors import build_usage_export_sensor
from usage_assets.ingest.lake import LAKE_CATALOG_URL_ENV
from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG


def build_resources(config: PipelineConfig) -> dict[str, dg.ConfigurableResource]:
    return {
        "circleci": CircleCIUsageResource(
            token=dg.EnvVar("CIRCLECI_TOKEN"),
            org_id=dg.EnvVar("CIRCLECI_ORG_ID"),
            api_url=config.api_url,
            shared_org_ids=list(config.shared_org_ids),
        ),
        "post_quota": PostQuotaResource(
            ledger_path=str(config.ledger_path),
            # An EnvVar only when set: the URL may carry a password, the UI shows the name.
            ledger_url=dg.EnvVar(QUOTA_LEDGER_URL_ENV)
            if os.environ.get(QUOTA_LEDGER_URL_ENV)
            else "",
            max_posts=config.post_quota,
            window_hours=config.post_quota_window_hours,
        ),
        "raw_store": RawStoreResource(raw_dir=str(config.raw_dir)),
        "warehouse": build_warehouse(config),
        "insights": InsightsResource(
            reference_dir=str(config.reference_dir), report_path=str(config.report_path)
        ),
    }


def build_warehouse(config: PipelineConfig) -> WarehouseResource:
    """The DuckDB file, or the DuckLake when USAGE_LAKE_CATALOG_URL is set."""
    if config.lake_catalog_url is None:
        return WarehouseResource(
            database=config.duckdb_path, connection_config=dict(WAREHOUSE_DUCKDB_CONFIG)
        )
    return WarehouseResource(
        database=":memory:",
        # An in-memory engine spills beside the raw files, not into the working directory.
        connection_config={
            **WAREHOUSE_DUCKDB_CONFIG,
            "temp_directory": str(config.data_dir / "duckdb_spill"),
        },
        # An EnvVar: the URL may carry a password, the UI shows the name.
        lake_catalog_url=dg.EnvVar(LAKE_CATALOG_URL_ENV),
        lake_data_path=config.lake_data_path,
    )


config = current_config()
defs = dg.Definitions(
    assets=[
        usage_export_job,
        raw_usage_files,
        job_runs,
        insights_daily,
        project_default_branches,
        insights_rollups,
    ],
    asset_checks=[job_runs_checks, job_runs_table_checks, *job_runs_freshness_checks],
    jobs=[create_usage_export, download_and_load_usage, check_job_runs_table],
    sensors=[
        build_usage_export_sensor(
            minimum_interval_seconds=config.sensor_interval_seconds,
            max_gets_per_tick=config.sensor_max_gets_per_tick,
            warehouse_writers=config.warehouse_writers,
        ),
        insights_automation_sensor,
        build_freshness_sensor(job_runs_freshness_checks),
    ],
    schedules=[
        daily_usage_export_schedule,
        weekly_usage_reexport_schedule,
        job_runs_table_check_schedule,
    ],
    resources=build_resources(config),
)
