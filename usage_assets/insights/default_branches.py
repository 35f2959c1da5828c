"""`circleci_insights.project_default_branches`: each project's default branch, and where it came from.

The export has no default-branch column, and "the branch most workflow runs ran on" picks a
scheduled feature branch in half of the busiest projects of a real export. CircleCI knows the
answer (`GET /project/{project-slug}` -> `vcs_info.default_branch`), so a project's default branch
is the first of:

1. `default_branches.csv` (the user's word, by project name);
2. the API's `vcs_info.default_branch`, as last fetched;
3. `main`, `master` or `trunk`, if the project ran workflows on it (the one with most runs);
4. the branch most of its workflow runs ran on (ties: the first branch name).

`default_branch_source` says which one it was. The API is asked at most once per project per UTC
day (`due`); its answers are kept in this table (`api_*` columns) between runs. A project whose
check failed keeps its last answer if the failure says nothing about the project (a timeout, a
5xx), and loses it if it does (404: gone, or no longer visible to the token; 403).

`performance` resolves the same way from the same table, with the reference files of its own run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import duckdb

from usage_assets.circleci.errors import (
    ApiTransportError,
    ForbiddenError,
    ProjectNotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
    UsageApiError,
)
from usage_assets.circleci.models import Project, project_slug
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights.common import create_table, replace_all_rows, table
from usage_assets.insights.reference_data import DEFAULT_BRANCHES_FILE, DefaultBranch
from usage_assets.insights.workflow_runs import WORKFLOW_RUNS
from usage_assets.insights.workflow_runs import ensure_table as ensure_workflow_runs

NAME = "project_default_branches"

SOURCE_CSV = DEFAULT_BRANCHES_FILE
SOURCE_API = "api"
SOURCE_CONVENTIONAL = "conventional_name"
SOURCE_MOST_FREQUENT = "most_frequent"
SOURCES = (SOURCE_CSV, SOURCE_API, SOURCE_CONVENTIONAL, SOURCE_MOST_FREQUENT)
# In order of preference when a project ran on more than one with equal runs.
CONVENTIONAL_NAMES = ("main", "master", "trunk")

COLUMNS: dict[str, str] = {
    "organization_id": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "project_slug": "VARCHAR",
    "default_branch": "VARCHAR",
    "default_branch_source": "VARCHAR",
    "api_default_branch": "VARCHAR",
    "api_checked_at": "TIMESTAMPTZ",
    "api_error": "VARCHAR",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}

ProjectKey = tuple[str, str]  # (organization_id, project_id)


@dataclass(frozen=True)
class Resolution:
    branch: str | None
    source: str | None  # one of SOURCES; None when nothing is known (no runs, no answer)


def resolve(
    override: str | None, api_branch: str | None, branch_runs: Mapping[str, int]
) -> Resolution:
    """A project's default branch from, in order, the csv, the API, a conventional name the
    project ran on, its most frequent branch. `branch_runs`: workflow runs per branch."""
    if override:
        return Resolution(override, SOURCE_CSV)
    if api_branch:
        return Resolution(api_branch, SOURCE_API)
    used = [name for name in CONVENTIONAL_NAMES if branch_runs.get(name, 0) > 0]
    if used:
        # max keeps the first of equals, so main before master before trunk.
        return Resolution(max(used, key=lambda name: branch_runs[name]), SOURCE_CONVENTIONAL)
    ran = [(branch, runs) for branch, runs in branch_runs.items() if runs > 0]
    if ran:
        branch, _ = min(ran, key=lambda item: (-item[1], item[0]))
        return Resolution(branch, SOURCE_MOST_FREQUENT)
    return Resolution(None, None)


@dataclass(frozen=True)
class KnownProject:
    """A project of `circleci.job_runs`."""

    organization_id: str
    project_id: str
    project_name: str | None
    vcs_url: str | None

    @property
    def key(self) -> ProjectKey:
        return (self.organization_id, self.project_id)

    @property
    def slug(self) -> str:
        return project_slug(self.vcs_url, self.organization_id, self.project_id)


@dataclass(frozen=True)
class ApiCheck:
    """The last time the API was asked about a project, and what it said."""

    default_branch: str | None
    checked_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class ProjectDefaultBranch:
    project: KnownProject
    resolution: Resolution
    check: ApiCheck


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    create_table(conn, NAME, COLUMNS)


def read_projects(conn: duckdb.DuckDBPyConnection) -> list[KnownProject]:
    """Every project in `circleci.job_runs` (its latest name and VCS URL, should they change)."""
    rows = conn.execute(
        f"""
        SELECT organization_id, project_id, arg_max(project_name, usage_date),
            arg_max(vcs_url, usage_date)
        FROM {JOB_RUNS} WHERE project_id IS NOT NULL
        GROUP BY organization_id, project_id ORDER BY organization_id, project_id
        """
    ).fetchall()
    return [KnownProject(str(o), str(p), name, url) for o, p, name, url in rows]


def read_checks(conn: duckdb.DuckDBPyConnection) -> dict[ProjectKey, ApiCheck]:
    """The API answers kept in the table by earlier runs."""
    ensure_table(conn)
    rows = conn.execute(
        f"SELECT organization_id, project_id, api_default_branch, api_checked_at, api_error"
        f" FROM {table(NAME)}"
    ).fetchall()
    return {(o, p): ApiCheck(branch, at, error) for o, p, branch, at, error in rows}


def read_branch_runs(conn: duckdb.DuckDBPyConnection) -> dict[ProjectKey, dict[str, int]]:
    """Workflow runs per project and branch (tag pipelines have no branch and are left out)."""
    ensure_workflow_runs(conn)
    rows = conn.execute(
        f"SELECT organization_id, project_id, branch, count(*) FROM {WORKFLOW_RUNS}"
        " WHERE branch IS NOT NULL GROUP BY ALL"
    ).fetchall()
    runs: dict[ProjectKey, dict[str, int]] = {}
    for org, project, branch, count in rows:
        runs.setdefault((org, project), {})[branch] = int(count)
    return runs


def due(
    projects: Iterable[KnownProject], checks: Mapping[ProjectKey, ApiCheck], now: datetime
) -> list[KnownProject]:
    """The projects the API was not asked about yet on `now`'s UTC day."""
    today = now.astimezone(UTC).date()
    out = []
    for project in projects:
        checked = checks.get(project.key)
        at = checked.checked_at if checked else None
        if at is None or at.astimezone(UTC).date() != today:
            out.append(project)
    return out


class ProjectLookup(Protocol):
    def get_project(self, project_slug: str) -> Project: ...


# The API as a whole is not answering (bad token, down, throttled): asking about the next project
# would only fail the same way after the same retries.
_API_DOWN = (UnauthorizedError, ApiTransportError, ServerError, RateLimitedError)
# An answer about the project itself: it is gone, or the token may not read it.
_NO_ANSWER = (ProjectNotFoundError, ForbiddenError)


@dataclass(frozen=True)
class ApiRound:
    checks: dict[ProjectKey, ApiCheck]  # the projects asked this time
    failures: list[str]  # one line per project whose check failed, for the log
    skipped: int  # projects not asked because the API stopped answering (asked next run)


def ask_api(
    client: ProjectLookup,
    projects: Sequence[KnownProject],
    previous: Mapping[ProjectKey, ApiCheck],
    now: datetime,
) -> ApiRound:
    """Ask the API about each project in turn; no failure is raised. Holds no connection."""
    checks: dict[ProjectKey, ApiCheck] = {}
    failures: list[str] = []
    for index, project in enumerate(projects):
        try:
            answer = client.get_project(project.slug)
        except UsageApiError as exc:
            kept = previous.get(project.key)
            branch = None if isinstance(exc, _NO_ANSWER) or kept is None else kept.default_branch
            checks[project.key] = ApiCheck(branch, now, f"{type(exc).__name__}: {exc}")
            failures.append(f"{project.project_name} ({project.slug}): {exc}")
            if isinstance(exc, _API_DOWN):
                return ApiRound(checks, failures, skipped=len(projects) - index - 1)
            continue
        checks[project.key] = ApiCheck(answer.vcs_info.default_branch or None, now, None)
    return ApiRound(checks, failures, skipped=0)


def resolve_all(
    projects: Iterable[KnownProject],
    checks: Mapping[ProjectKey, ApiCheck],
    overrides: Sequence[DefaultBranch],
    branch_runs: Mapping[ProjectKey, Mapping[str, int]],
) -> list[ProjectDefaultBranch]:
    by_name = {o.project_name: o.default_branch for o in overrides}
    never = ApiCheck(None, None, None)
    out = []
    for project in projects:
        check = checks.get(project.key, never)
        resolution = resolve(
            by_name.get(project.project_name or ""),
            check.default_branch,
            branch_runs.get(project.key, {}),
        )
        out.append(ProjectDefaultBranch(project, resolution, check))
    return out


def current(
    conn: duckdb.DuckDBPyConnection, overrides: Sequence[DefaultBranch]
) -> list[ProjectDefaultBranch]:
    """Every project's default branch from the warehouse as it is now: the kept API answers, the
    given csv rows, the loaded runs. No HTTP."""
    return resolve_all(read_projects(conn), read_checks(conn), overrides, read_branch_runs(conn))


def write(
    conn: duckdb.DuckDBPyConnection, rows: Sequence[ProjectDefaultBranch], run_id: str
) -> int:
    """Replace the table's rows; returns their number."""
    ensure_table(conn)
    replace_all_rows(
        conn,
        NAME,
        list(COLUMNS),
        [
            (
                r.project.organization_id,
                r.project.project_id,
                r.project.project_name,
                r.project.slug,
                r.resolution.branch,
                r.resolution.source,
                r.check.default_branch,
                r.check.checked_at,
                r.check.error,
                run_id,
            )
            for r in rows
        ],
    )
    return len(rows)
