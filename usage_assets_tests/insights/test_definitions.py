"""The metric definitions are written once: the README and the Dagster column schema are rendered
from them, and every performance column has one."""

from __future__ import annotations

from pathlib import Path

import duckdb

from usage_assets.insights import definitions, performance, workflow_runs
from usage_assets.insights.common import table
from usage_assets_tests.insights.job_rows import insert, job

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_exactly_the_definitions() -> None:
    readme = README.read_text(encoding="utf-8")
    assert definitions.with_definitions(readme) == readme, (
        "README.md's definitions differ from usage_assets/insights/definitions.py: run "
        "`python -m usage_assets.insights.definitions README.md`"
    )


def test_every_metric_column_is_defined_and_says_where_it_comes_from() -> None:
    described = definitions.column_descriptions()
    metric_columns = [
        c
        for c in performance.WORKFLOW_COLUMNS
        if c not in {"period", "period_kind", "period_start", "period_end", "period_days"}
        and not c.startswith(("organization_", "project_", "workflow_"))
        and c not in {"insights_run_id", "refreshed_at"}
    ]
    assert [c for c in metric_columns if c not in described] == []
    assert described["success_rate"].startswith("success rate (as in CircleCI Insights)")
    assert described["p95_successful_duration_seconds"].startswith(
        "p50 / p95 successful duration (ours)"
    )
    for definition in definitions.DEFINITIONS:
        if definition.origin == definitions.INSIGHTS:
            assert "glossary" in definition.source or "Insights API" in definition.source


def test_a_performance_table_of_an_older_shape_is_recreated(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    performance.ensure_tables(conn)
    conn.execute(f"DROP TABLE {table(performance.WORKFLOW_NAME)}")
    conn.execute(
        f"CREATE TABLE {table(performance.WORKFLOW_NAME)} (period VARCHAR, credits DOUBLE)"
    )
    performance.ensure_tables(conn)
    columns = [
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
            " ORDER BY ordinal_position",
            [performance.WORKFLOW_NAME],
        ).fetchall()
    ]
    assert columns == list(performance.WORKFLOW_COLUMNS)


def test_workflow_runs_of_an_older_shape_gain_insights_credits_from_their_job_runs(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    insert(conn, [job(workflow_id="wf-a", compute_credits=10.0, dlc_credits=200.0)])
    workflow_runs.refresh(conn, job()["usage_date"], job()["usage_date"], "run-0")
    # The table as the previous release left it: no insights_credits column.
    conn.execute(f"ALTER TABLE {workflow_runs.WORKFLOW_RUNS} DROP COLUMN insights_credits")
    workflow_runs.ensure_table(conn)
    assert conn.execute(
        f"SELECT workflow_id, insights_credits FROM {workflow_runs.WORKFLOW_RUNS}"
    ).fetchall() == [("wf-a", 210.0)]
