"""The code location loads, and its automation is wired as the UI expects."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from usage_assets.config import current_config
from usage_assets.definitions import defs
from usage_assets.defs.constants import RANGE_END_TAG, RANGE_START_TAG
from usage_assets_tests.defs.snapshot import SNAPSHOT_PATH, render_definitions


def test_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)


def test_definitions_match_the_snapshot() -> None:
    """Assets, checks, jobs, schedules, sensors and resources as reviewed; an unintended change
    to the wiring fails here. After an intended one: UPDATE_DEFINITIONS_SNAPSHOT=1 make test."""
    rendered = render_definitions(defs)
    if os.environ.get("UPDATE_DEFINITIONS_SNAPSHOT") == "1":
        SNAPSHOT_PATH.write_text(rendered)
    assert rendered == SNAPSHOT_PATH.read_text(), (
        f"the definitions differ from {SNAPSHOT_PATH.name}; if the change is intended, "
        "rerun with UPDATE_DEFINITIONS_SNAPSHOT=1 and review the diff"
    )


def test_lineage_edges() -> None:
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("raw_usage_files")).parent_keys == {
        dg.AssetKey("usage_export_job")
    }
    assert graph.get(dg.AssetKey("job_runs")).parent_keys == {dg.AssetKey("raw_usage_files")}
    assert graph.get(dg.AssetKey("daily_usage")).parent_keys == {dg.AssetKey("job_runs")}
    assert graph.get(dg.AssetKey("team_chargeback")).parent_keys == {dg.AssetKey("credit_costs")}
    assert dg.AssetKey("credit_forecast") in graph.get(dg.AssetKey("usage_report")).parent_keys


def test_the_insights_share_the_daily_partitions_and_the_sensors_run_refreshes_them() -> None:
    graph = defs.resolve_asset_graph()
    job_runs_partitions = graph.get(dg.AssetKey("job_runs")).partitions_def
    for name in ("daily_usage", "workflow_runs"):
        assert graph.get(dg.AssetKey(name)).partitions_def == job_runs_partitions
    for name in ("workflow_performance", "credit_forecast", "usage_report"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def is None
        assert node.automation_condition is not None
    job = defs.resolve_job_def("download_and_load_usage")
    selected = {key.to_user_string() for key in job.asset_layer.asset_graph.executable_asset_keys}
    assert {"raw_usage_files", "job_runs", "daily_usage", "usage_report"} <= selected


def test_every_asset_has_a_group_kinds_and_owners() -> None:
    for spec in defs.resolve_all_asset_specs():
        assert spec.group_name in ("circleci_usage", "circleci_insights")
        assert spec.kinds and spec.owners and spec.description


def test_sensor_and_schedules_run_by_default() -> None:
    for name in ("usage_export_job_sensor", "insights_automation_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    for name in ("daily_usage_export_schedule", "weekly_usage_reexport_schedule"):
        assert defs.resolve_schedule_def(name).default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_sensor_ticks_at_the_configured_interval() -> None:
    sensor = defs.resolve_sensor_def("usage_export_job_sensor")
    assert sensor.minimum_interval_seconds == current_config().sensor_interval_seconds


def test_weekly_schedule_requests_the_trailing_seven_days_in_one_run() -> None:
    schedule = defs.resolve_schedule_def("weekly_usage_reexport_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 22, 7, tzinfo=UTC)
    )
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        "2026-11-15",
        "2026-11-21",
    )


def test_daily_schedule_requests_yesterday() -> None:
    schedule = defs.resolve_schedule_def("daily_usage_export_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 22, 6, tzinfo=UTC)
    )
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-21"


def test_secrets_are_env_vars_not_values() -> None:
    assert defs.resources is not None
    circleci = defs.resources["circleci"]
    assert isinstance(circleci, dg.ConfigurableResource)
    config = circleci._get_non_default_public_field_values()
    assert config["token"] == dg.EnvVar("CIRCLECI_TOKEN")


def test_dagster_cli_validates_the_workspace() -> None:
    # What `dagster dev` loads; no token is needed to load (EnvVars resolve at run time).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCLECI_")}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_loading_the_code_location_prints_no_backfill_policy_beta_warning() -> None:
    """The one BetaWarning the definitions cause on purpose stays out of the user's terminal;
    every other BetaWarning still shows (the filter is targeted, not blanket)."""
    script = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "import dagster as dg\n"
        "import usage_assets.definitions\n"
        "warnings.warn('another beta feature', dg.BetaWarning)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backfill_policy" not in result.stderr
    assert "BetaWarning: another beta feature" in result.stderr
