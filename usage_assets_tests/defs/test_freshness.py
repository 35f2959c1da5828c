"""Freshness: the `job_runs` check says when yesterday is missing, its sensor evaluates it, and the
report and forecast carry a cron freshness policy; all from `USAGE_FRESHNESS_DEADLINE_CRON`.

The check is executed for real (Dagster's own check op, in a run, against an on-disk instance).
It decides "now" with `dagster._time.get_current_timestamp()`, so the tests pin the clock with
Dagster's `freeze_time` (which patches exactly that) at fixed dates: nothing here depends on the
day the suite runs on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.test_utils import freeze_time

from usage_assets.config import DEFAULT_FRESHNESS_DEADLINE_CRON, current_config
from usage_assets.definitions import defs
from usage_assets.defs.freshness import FRESHNESS_CHECK_NAME, FRESHNESS_SENSOR_NAME
from usage_assets.defs.usage.checks import job_runs_freshness_checks

FRESHNESS_CHECK = dg.AssetCheckKey(dg.AssetKey("job_runs"), FRESHNESS_CHECK_NAME)
# Noon UTC is the default deadline: 13:00 is after the 10 March deadline (yesterday, 9 March,
# must be loaded), 11:00 before it (the 9 March deadline still applies: 8 March must be loaded).
AFTER_DEADLINE = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
BEFORE_DEADLINE = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
YESTERDAY, DAY_BEFORE = "2026-03-09", "2026-03-08"


def _check_only_job() -> dg.JobDefinition:
    """The code location's own definitions, with a job of just the freshness check: what the
    sensor's run request executes (asset_check_keys on the implicit asset job)."""
    merged = dg.Definitions.merge(
        defs,
        dg.Definitions(
            jobs=[
                dg.define_asset_job(
                    "freshness_check_only",
                    selection=dg.AssetSelection.checks(*job_runs_freshness_checks),
                )
            ]
        ),
    )
    return merged.resolve_job_def("freshness_check_only")


def _loaded(instance: dg.DagsterInstance, *partitions: str) -> None:
    """Record job_runs partitions as materialized, as a load run's events do."""
    for partition in partitions:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("job_runs", partition=partition)
        )


def _evaluate(instance: dg.DagsterInstance, at: datetime) -> dg.AssetCheckEvaluation:
    with freeze_time(at):
        result = _check_only_job().execute_in_process(instance=instance)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.asset_check_key == FRESHNESS_CHECK
    return evaluation


def test_the_deadline_defaults_to_noon_utc_after_the_daily_export() -> None:
    assert (
        current_config().freshness_deadline_cron == DEFAULT_FRESHNESS_DEADLINE_CRON == "0 12 * * *"
    )
    assert current_config().daily_schedule_hour < 12


def test_the_check_fails_when_yesterday_is_missing_after_the_deadline(
    instance: dg.DagsterInstance,
) -> None:
    _loaded(instance, "2026-03-07", DAY_BEFORE)  # older days only
    evaluation = _evaluate(instance, AFTER_DEADLINE)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert f"expected partition {YESTERDAY}" in (evaluation.description or "")


def test_the_check_fails_when_nothing_was_ever_loaded(instance: dg.DagsterInstance) -> None:
    evaluation = _evaluate(instance, AFTER_DEADLINE)
    assert not evaluation.passed
    assert "never been observed/materialized" in (evaluation.description or "")


def test_the_check_passes_once_yesterday_is_materialized(instance: dg.DagsterInstance) -> None:
    _loaded(instance, DAY_BEFORE)
    assert not _evaluate(instance, AFTER_DEADLINE).passed
    _loaded(instance, YESTERDAY)
    evaluation = _evaluate(instance, AFTER_DEADLINE)
    assert evaluation.passed
    assert YESTERDAY in (evaluation.description or "")


def test_a_backfill_of_an_old_day_does_not_make_yesterday_fresh(
    instance: dg.DagsterInstance,
) -> None:
    """Why a partition check and not a FreshnessPolicy on job_runs: the newest materialization is
    of an old day, yet yesterday is still missing."""
    _loaded(instance, DAY_BEFORE)
    _loaded(instance, "2026-01-15")  # loaded last, by a backfill
    assert not _evaluate(instance, AFTER_DEADLINE).passed


def test_before_the_deadline_the_day_before_yesterday_is_enough(
    instance: dg.DagsterInstance,
) -> None:
    _loaded(instance, DAY_BEFORE)
    evaluation = _evaluate(instance, BEFORE_DEADLINE)
    assert evaluation.passed
    assert DAY_BEFORE in (evaluation.description or "")


def test_the_sensor_evaluates_the_check_and_waits_while_it_is_fresh(
    instance: dg.DagsterInstance,
) -> None:
    sensor = defs.resolve_sensor_def(FRESHNESS_SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    def tick(at: datetime) -> list[dg.RunRequest]:
        with freeze_time(at):
            context = dg.build_sensor_context(instance=instance, definitions=defs)
            return list(sensor.evaluate_tick(context).run_requests or [])

    (request,) = tick(AFTER_DEADLINE)  # never evaluated: evaluate it
    assert list(request.asset_check_keys or []) == [FRESHNESS_CHECK]
    _loaded(instance, YESTERDAY)
    assert _evaluate(instance, AFTER_DEADLINE).passed
    # Fresh until the next deadline (11 March, 12:00): nothing to launch before it, then again.
    assert tick(AFTER_DEADLINE + timedelta(hours=22)) == []
    assert len(tick(AFTER_DEADLINE + timedelta(hours=23, minutes=5))) == 1


def test_every_load_run_evaluates_the_check_after_job_runs() -> None:
    job = defs.resolve_job_def("download_and_load_usage")
    assert FRESHNESS_CHECK in job.asset_layer.asset_graph.asset_check_keys
    spec = defs.resolve_asset_graph().get_check_spec(FRESHNESS_CHECK)
    assert not spec.blocking  # a backfill of older days is never held back by yesterday


def test_the_report_and_the_forecast_carry_the_cron_freshness_policy() -> None:
    graph = defs.resolve_asset_graph()
    expected = dg.FreshnessPolicy.cron(
        deadline_cron=DEFAULT_FRESHNESS_DEADLINE_CRON,
        lower_bound_delta=timedelta(hours=24),
        timezone="UTC",
    )
    for name in ("usage_report", "credit_forecast"):
        assert graph.get(dg.AssetKey(name)).freshness_policy == expected, name
    # Partitioned assets get the partition check instead: a policy would be fooled by backfills.
    for name in ("job_runs", "daily_usage"):
        assert graph.get(dg.AssetKey(name)).freshness_policy is None, name


def test_a_bad_deadline_stops_the_code_location_loading_naming_the_variable() -> None:
    """At load, not at the first evaluation (the value forms are covered in test_config)."""
    value = "0 25 * * *"
    env = {**os.environ, "USAGE_FRESHNESS_DEADLINE_CRON": value}
    result = subprocess.run(
        [sys.executable, "-c", "import usage_assets.definitions"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert f"USAGE_FRESHNESS_DEADLINE_CRON={value!r}" in result.stderr
