"""The insights assets materialized for real after the pipeline, in-process, against the
simulator: lineage, metadata, checks, the report file, re-runs, and their automation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from usage_assets.config import DEFAULT_REFERENCE_DIR
from usage_assets.definitions import defs
from usage_assets.defs.constants import range_tags
from usage_assets.defs.insights.assets import insights_daily, insights_rollups
from usage_assets.defs.insights.default_branches import project_default_branches
from usage_assets.defs.insights.metadata import anomaly_result
from usage_assets.defs.insights.specs import (
    ANOMALY_CHECK,
    DAILY_USAGE,
    FILE_RATE_CHECK,
    USAGE_REPORT,
)
from usage_assets.defs.resources import InsightsResource
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.insights.anomalies import Anomaly
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    expected_job_ids,
    job_id_of,
    pipeline_resources,
)

TODAY = datetime.now(UTC).date()
FIRST = (TODAY - timedelta(days=12)).isoformat()
LAST = (TODAY - timedelta(days=8)).isoformat()
ROLLUPS = {
    "workflow_performance",
    "job_performance",
    "resource_class_rates",
    "right_sizing",
    "credit_costs",
    "team_chargeback",
    "credit_forecast",
    "usage_report",
}


@pytest.fixture
def live_sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        processing_time=timedelta(0), rows_per_day=30, rows_per_part=400, get_limit=10_000
    )
    with SimulatorServer(settings) as server:
        yield server


def resources(sim: SimulatorServer, tmp_path: Path) -> dict[str, object]:
    reference = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, reference, dirs_exist_ok=True)
    org = sim.simulator.store.usage.org_name(DEFAULT_ORG_ID)
    # The forecast is for the last loaded day's month. A budget of 1 credit: whatever the
    # forecast, the organization is over it.
    (reference / "budgets.csv").write_text(
        f"month,organization,project_name,credits\n{LAST[:7]},{org},,1\n"
    )
    return {
        **pipeline_resources(sim, tmp_path),
        "insights": InsightsResource(
            reference_dir=str(reference), report_path=str(tmp_path / "report" / "usage.html")
        ),
    }


def load(
    sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """What the sensor's download_and_load_usage run does, for FIRST .. LAST."""
    every = [
        usage_export_job,
        raw_usage_files,
        job_runs,
        job_runs_checks,
        insights_daily,
        insights_rollups,
    ]
    return dg.materialize(
        every,
        selection=every[1:],
        resources=resources(sim, tmp_path),
        instance=instance,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )


def table_totals(tmp_path: Path) -> tuple[int, int, float, int]:
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM circleci.job_runs),"
            " (SELECT sum(job_runs) FROM circleci_insights.daily_usage),"
            " (SELECT sum(credits) FROM circleci_insights.credit_costs),"
            " (SELECT count(*) FROM circleci_insights.workflow_runs)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), float(row[2]), int(row[3])


def test_the_sensors_run_refreshes_the_insights_and_writes_the_report(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    exported = dg.materialize(
        [usage_export_job],
        resources=pipeline_resources(live_sim, tmp_path),
        instance=instance,
        tags=range_tags(FIRST, LAST),
    )
    live_sim.simulator.store.wait_until_written(job_id_of(exported))
    # The automation's first evaluation only records where things stand.
    assert dg.evaluate_automation_conditions(defs=defs, instance=instance).total_requested == 0
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor

    result = load(live_sim, tmp_path, instance)
    assert result.success

    materialized = [
        (event.asset_key.to_user_string(), event.partition)
        for event in (e.materialization for e in result.get_asset_materialization_events())
    ]
    assert {k for k, p in materialized if p is None} == ROLLUPS  # once per run, unpartitioned
    # So every daily_usage and job_runs materialization names a partition.
    days = sorted(p for k, p in materialized if k == "daily_usage" and p is not None)
    assert days == sorted(p for k, p in materialized if k == "job_runs" and p is not None)
    assert len(days) == 5 and days[0] == FIRST and days[-1] == LAST

    checks = {
        (c.asset_key.to_user_string(), c.check_name): c
        for c in result.get_asset_check_evaluations()
    }
    assert len(checks) == 4 + 4 + 8  # job_runs, daily insights, roll-ups
    for (asset, name), check in checks.items():
        if name in (ANOMALY_CHECK, FILE_RATE_CHECK):
            assert check.severity == dg.AssetCheckSeverity.WARN
        else:
            assert check.passed, f"{asset} {name}: {check.description}"
    # The simulator bills at the file's rates: every fitted rate the file has matches it. The
    # check names only classes the file has no rate for (m4pro, on days after 2026-02-16, at the
    # simulator's own rate), and which of those a window holds depends on its dates.
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as conn:
        rates = conn.execute(
            "SELECT executor, resource_class, fitted_rate, file_rate"
            " FROM circleci_insights.resource_class_rates WHERE fitted_rate IS NOT NULL"
        ).fetchall()
    assert rates
    assert [r for r in rates if r[3] is not None and r[2] != r[3]] == []
    unrated = [f"{e} {c}" for e, c, _, file_rate in rates if file_rate is None]
    rates_check = checks[("resource_class_rates", FILE_RATE_CHECK)]
    assert rates_check.passed == (not unrated), rates_check.description
    for name in unrated:
        assert f"{name}: fitted " in (rates_check.description or "")

    # Every job row of the simulator is counted once, and the costs add up to the same credits.
    rows, daily_rows, priced_credits, workflows = table_totals(tmp_path)
    assert rows == daily_rows == len(expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC)))
    assert priced_credits > 0 and workflows > 0

    metadata = {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }
    for name in ("daily_usage", "workflow_runs", *(ROLLUPS - {"usage_report"})):
        assert "dagster/row_count" in metadata[name], name
        assert "dagster/column_schema" in metadata[name], name
    assert "| project |" in str(metadata["daily_usage"]["top_projects"].value)
    assert metadata["credit_forecast"]["over_budget"].value != "none"  # the 1-credit budget
    # credit_costs reports job credits and seat credits apart; together, every priced credit.
    job, seat, total = (
        float(str(metadata["credit_costs"][key].value))
        for key in ("job_credits", "seat_credits", "total_credits")
    )
    assert (job + seat, total) == (pytest.approx(total), pytest.approx(priced_credits))
    report_path = Path(str(metadata["usage_report"]["report_path"].value))
    assert report_path == tmp_path / "report" / "usage.html" and report_path.is_file()
    assert report_path.read_text().count("<svg") == 4

    # Nothing for the automation to do: the run refreshed the roll-ups with their inputs.
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert after.total_requested == 0

    # The same days again: replaced, never duplicated.
    assert load(live_sim, tmp_path, instance).success
    assert table_totals(tmp_path) == (rows, daily_rows, pytest.approx(priced_credits), workflows)

    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert after.total_requested == 0

    # The first run had no roll-up state: every period computed. Nothing changed since the
    # reload: nothing recomputed; the launchpad's full_rebuild recomputes every period.
    assert metadata["job_performance"]["full_rebuild"].value is True
    assert metadata["job_performance"]["full_rebuild_reason"].value == "no state"
    periods = metadata["job_performance"]["periods_recomputed"].value
    assert isinstance(periods, int) and periods >= 2  # a month or two, and the last 30 days
    for config, recomputed, kept in ((False, 0, periods), (True, periods, 0)):
        rerun = dg.materialize(
            [insights_rollups],
            selection=["job_performance", "workflow_performance"],
            resources=resources(live_sim, tmp_path),
            instance=instance,
            run_config={"ops": {"insights_rollups": {"config": {"full_rebuild": config}}}},
        )
        for event in rerun.get_asset_materialization_events():
            shown = event.materialization.metadata
            assert shown["full_rebuild"].value is config
            assert (shown["periods_recomputed"].value, shown["periods_kept"].value) == (
                recomputed,
                kept,
            )
    assert table_totals(tmp_path) == (rows, daily_rows, pytest.approx(priced_credits), workflows)

    # An input updated by some other run (here: reported without one) brings back what is
    # downstream of it: not the performance tables or right-sizing, which read other inputs.
    instance.report_runless_asset_event(dg.AssetMaterialization(DAILY_USAGE, partition=LAST))
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert {
        key.to_user_string()
        for key in again._requested_partitions_by_asset_key
        if again.get_requested_partitions(key)
    } == {"credit_costs", "team_chargeback", "credit_forecast", "usage_report"}


def test_a_malformed_reference_file_fails_the_roll_ups_with_its_line(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resource_set = resources(live_sim, tmp_path)
    (tmp_path / "reference" / "price_per_credit.csv").write_text(
        "valid_from,valid_to,currency,price_per_credit\n2026-01-01,,USD,cheap\n"
    )
    result = dg.materialize(
        [insights_rollups], resources=resource_set, instance=instance, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error is not None
    assert "price_per_credit.csv, line 2, column 'price_per_credit'" in error.message


def test_the_anomaly_warning_names_the_project() -> None:
    found = [Anomaly(TODAY, "acme", "web-app", 900.0, 100.0)]
    result = anomaly_result(found)
    assert not result.passed
    assert "web-app" in result.description and "9.0x" in result.description
    assert anomaly_result([]).passed
    assert USAGE_REPORT.to_user_string() == "usage_report"


def test_the_report_alone_on_an_empty_warehouse(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [insights_rollups],
        selection=[USAGE_REPORT],
        resources=resources(live_sim, tmp_path),
        instance=instance,
    )
    (materialization,) = result.asset_materializations_for_node("insights_rollups")
    path = Path(str(materialization.metadata["report_path"].value))
    assert "No usage is loaded yet" in path.read_text()
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]


def test_a_quiet_window_on_a_new_warehouse_gives_empty_insights_and_a_passing_run(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """No usage loaded at all (a new warehouse, a quiet day): every insights table exists and is
    empty, every check passes, and the report says nothing is loaded yet."""
    result = dg.materialize(
        [insights_daily, project_default_branches, insights_rollups],
        partition_key="2026-11-20",
        resources=resources(live_sim, tmp_path),
        instance=instance,
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'circleci_insights'"
        ).fetchall()
        # Every table asset but the report (a file), and the performance roll-ups' state.
        assert len(tables) == 11
        assert ("rollup_periods",) in tables
        for (name,) in tables:
            assert conn.execute(f"SELECT count(*) FROM circleci_insights.{name}").fetchone() == (0,)
