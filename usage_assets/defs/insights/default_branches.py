"""The `project_default_branches` asset: CircleCI's default branch of each project, fetched at
most once per project per UTC day, resolved with the fallbacks (see
`usage_assets.insights.default_branches`).

It runs in the sensor's `download_and_load_usage` runs, before the roll-ups that read it, never in
a sensor tick. The HTTP happens between two short uses of the warehouse, never while holding it,
and no API failure fails the run: the project falls back and the failure is logged and recorded.
"""

from collections import Counter

import dagster as dg
from dagster_duckdb import DuckDBResource

from usage_assets.circleci.timestamps import utc_now
from usage_assets.defs.commit_conflicts import retry_on_commit_conflict
from usage_assets.defs.constants import INSIGHTS_GROUP, OWNERS, WAREHOUSE_POOL
from usage_assets.defs.insights.metadata import markdown_table, table_schema
from usage_assets.defs.insights.specs import PROJECT_DEFAULT_BRANCHES, WORKFLOW_RUNS
from usage_assets.defs.resources import (
    CircleCIUsageResource,
    InsightsResource,
    warehouse_connection,
)
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.insights import default_branches
from usage_assets.insights.common import table


@dg.asset(
    key=PROJECT_DEFAULT_BRANCHES,
    deps=[job_runs, WORKFLOW_RUNS],
    description="Each project's default branch and its source: default_branches.csv, CircleCI's "
    "vcs_info.default_branch (GET /project/{slug}, at most once per project per UTC day), "
    "main/master/trunk if the project ran on it, or its most frequent branch.",
    group_name=INSIGHTS_GROUP,
    kinds={"duckdb", "circleci", "api"},
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    metadata={
        "dagster/table_name": table(default_branches.NAME),
        "dagster/column_schema": table_schema(default_branches.COLUMNS),
    },
)
def project_default_branches(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBResource,
    circleci: CircleCIUsageResource,
    insights: InsightsResource,
) -> dg.MaterializeResult:
    """Ask the API about the projects not checked today, then rebuild the table."""
    overrides = insights.reference_data().default_branches
    now = utc_now()
    with warehouse_connection(warehouse) as conn:
        projects = default_branches.read_projects(conn)
        previous = default_branches.read_checks(conn)
    asking = default_branches.due(projects, previous, now)
    asked = default_branches.ApiRound({}, [], 0)
    if asking:
        with circleci.get_client() as client:
            asked = default_branches.ask_api(client, asking, previous, now)
    for failure in asked.failures:
        context.log.warning(f"No default branch from the API for {failure}; falling back")
    if asked.skipped:
        context.log.warning(
            f"The API stopped answering: {asked.skipped} project(s) not asked, tried next run"
        )

    def resolve_and_write() -> list[default_branches.ProjectDefaultBranch]:
        # Repeated in place after a lost commit (a concurrent run's write), so the API answers
        # just gathered are kept, not asked for again.
        with warehouse_connection(warehouse) as conn:
            resolved = default_branches.resolve_all(
                projects,
                {**previous, **asked.checks},
                overrides,
                default_branches.read_branch_runs(conn),
            )
            default_branches.write(conn, resolved, context.run.run_id)
        return resolved

    rows = retry_on_commit_conflict(resolve_and_write, context.log.warning)
    by_source = Counter(r.resolution.source or "none" for r in rows)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "api_requests": len(asked.checks),
            "api_failures": len(asked.failures),
            "api_skipped": asked.skipped,
            "projects_by_source": ", ".join(
                f"{source}: {by_source[source]}"
                for source in (*default_branches.SOURCES, "none")
                if by_source[source]
            )
            or "no projects",
            "projects": dg.MetadataValue.md(
                markdown_table(
                    ["project", "default branch", "source", "API error"],
                    [
                        [
                            r.project.project_name or r.project.project_id,
                            r.resolution.branch or "",
                            r.resolution.source or "",
                            r.check.error or "",
                        ]
                        for r in rows[:50]
                    ],
                )
            ),
        }
    )
