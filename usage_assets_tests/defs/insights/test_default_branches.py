"""The project_default_branches asset in-process against the simulator: the demo's projects
resolve via the API, the API is asked once per project per UTC day (the clock is injected), and a
project the API does not know falls back without failing the run."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from usage_assets.config import DEFAULT_REFERENCE_DIR
from usage_assets.defs.insights import default_branches as asset_module
from usage_assets.defs.insights.default_branches import project_default_branches
from usage_assets.defs.resources import InsightsResource
from usage_assets.insights import workflow_runs
from usage_assets.simulator.projects import simulated_projects
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    download_and_load,
    export,
    int_metadata,
    pipeline_resources,
)

# Any fixed instants: what matters is which UTC day they fall on.
DAY_ONE = datetime(2030, 5, 6, 23, 0, tzinfo=UTC)
DAY_ONE_LATER = datetime(2030, 5, 6, 23, 59, 59, tzinfo=UTC)
DAY_TWO = datetime(2030, 5, 7, 0, 0, 1, tzinfo=UTC)
GHOST = "0e0e0e0e-0000-4000-8000-000000000001"


@pytest.fixture
def live_sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        processing_time=timedelta(0), rows_per_day=30, rows_per_part=400, get_limit=10_000
    )
    with SimulatorServer(settings) as server:
        yield server


def materialize(
    sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    reference = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, reference, dirs_exist_ok=True)
    return dg.materialize(
        [project_default_branches],
        resources={
            **pipeline_resources(sim, tmp_path),
            "insights": InsightsResource(
                reference_dir=str(reference), report_path=str(tmp_path / "usage.html")
            ),
        },
        instance=instance,
    )


def test_the_api_is_asked_once_a_day_and_unknown_projects_fall_back(
    live_sim: SimulatorServer,
    tmp_path: Path,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    with duckdb.connect(str(tmp_path / "usage.duckdb")) as conn:
        loaded = {
            project_id
            for (project_id,) in conn.execute(
                "SELECT DISTINCT project_id FROM circleci.job_runs"
            ).fetchall()
        }
        # A project CircleCI does not (or no longer) know, that ran on master, with its
        # workflow run (what the run's insights_daily step would have written).
        conn.execute(
            "INSERT INTO circleci.job_runs SELECT * REPLACE (? AS project_id,"
            " 'ghost' AS project_name, 'https://github.com/acme/ghost' AS vcs_url,"
            " 'master' AS vcs_branch, 'ghost-job' AS job_id, 'ghost-wf' AS workflow_id)"
            " FROM circleci.job_runs LIMIT 1",
            [GHOST],
        )
        first_day, last_day = conn.execute(
            "SELECT min(usage_date), max(usage_date) FROM circleci.job_runs"
        ).fetchone() or (None, None)
        workflow_runs.refresh(conn, first_day, last_day, "load")
    generated = {
        p.id: p for p in simulated_projects(live_sim.simulator.store.usage, [DEFAULT_ORG_ID])
    }
    assert loaded and loaded <= set(generated)
    asked = live_sim.simulator.project_requests

    monkeypatch.setattr(asset_module, "utc_now", lambda: DAY_ONE)
    first = materialize(live_sim, tmp_path, instance)
    assert first.success  # the 404 did not fail the run
    assert len(asked) == len(loaded) + 1
    assert "gh/acme/ghost" in asked
    (done,) = first.asset_materializations_for_node("project_default_branches")
    assert int_metadata(done.metadata, "api_requests") == len(loaded) + 1
    assert int_metadata(done.metadata, "api_failures") == 1
    warnings = [
        e.user_message
        for e in instance.all_logs(first.run_id)
        if e.level == logging.WARNING and "No default branch from the API" in e.user_message
    ]
    assert len(warnings) == 1 and "ghost (gh/acme/ghost)" in warnings[0]

    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT project_id, project_slug, default_branch, default_branch_source,"
            " api_default_branch, api_checked_at, api_error"
            " FROM circleci_insights.project_default_branches"
        ).fetchall()
    by_id = {row[0]: row[1:] for row in rows}
    assert set(by_id) == loaded | {GHOST}
    for project_id in loaded:
        project = generated[project_id]
        assert by_id[project_id] == (
            project.slug,
            project.default_branch,
            "api",
            project.default_branch,
            DAY_ONE,
            None,
        )
    slug, branch, source, api_branch, checked_at, error = by_id[GHOST]
    assert (slug, branch, source, api_branch, checked_at) == (
        "gh/acme/ghost",
        "master",
        "conventional_name",
        None,
        DAY_ONE,
    )
    assert error is not None and error.startswith("ProjectNotFoundError")

    # The same UTC day: nothing is asked again, and the answers are kept.
    monkeypatch.setattr(asset_module, "utc_now", lambda: DAY_ONE_LATER)
    second = materialize(live_sim, tmp_path, instance)
    assert second.success
    assert len(asked) == len(loaded) + 1
    (again,) = second.asset_materializations_for_node("project_default_branches")
    assert int_metadata(again.metadata, "api_requests") == 0
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as conn:
        sources = conn.execute(
            "SELECT default_branch_source, count(*) FROM circleci_insights.project_default_branches"
            " GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert sources == [("api", len(loaded)), ("conventional_name", 1)]

    # A new UTC day: every project is asked again.
    monkeypatch.setattr(asset_module, "utc_now", lambda: DAY_TWO)
    assert materialize(live_sim, tmp_path, instance).success
    assert len(asked) == 2 * (len(loaded) + 1)
