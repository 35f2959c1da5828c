"""A project's default branch: the order of the sources, the once-a-day API cache, and what the
performance tables do with the result."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from usage_assets.circleci import (
    ApiTransportError,
    ForbiddenError,
    Project,
    ProjectNotFoundError,
    UsageApiError,
    VcsInfo,
)
from usage_assets.insights import default_branches, performance, workflow_runs
from usage_assets.insights.default_branches import (
    SOURCE_API,
    SOURCE_CONVENTIONAL,
    SOURCE_CSV,
    SOURCE_MOST_FREQUENT,
    ApiCheck,
    KnownProject,
    Resolution,
    ask_api,
    due,
    resolve,
)
from usage_assets.insights.reference_data import DefaultBranch
from usage_assets_tests.insights.job_rows import insert, job

# A project whose busiest branch is a scheduled feature branch, as in the real export.
BUSY_FEATURE = {"nightly/upgrade-tests": 155, "main": 49, "fix/x": 3}


@pytest.mark.parametrize(
    ("override", "api", "runs", "expected"),
    [
        # The csv beats everything.
        ("release", "main", BUSY_FEATURE, Resolution("release", SOURCE_CSV)),
        # The API beats the runs, even a branch the project never ran on.
        (None, "develop", BUSY_FEATURE, Resolution("develop", SOURCE_API)),
        # A conventional name the project ran on beats the busier feature branch.
        (None, None, BUSY_FEATURE, Resolution("main", SOURCE_CONVENTIONAL)),
        (None, None, {"rau/fix-ci": 12, "master": 4}, Resolution("master", SOURCE_CONVENTIONAL)),
        (None, None, {"trunk": 1, "feature/y": 9}, Resolution("trunk", SOURCE_CONVENTIONAL)),
        # More than one used: the one with most runs; equal runs: main, then master, then trunk.
        (None, None, {"main": 2, "master": 5}, Resolution("master", SOURCE_CONVENTIONAL)),
        (None, None, {"trunk": 3, "master": 3}, Resolution("master", SOURCE_CONVENTIONAL)),
        # A `main` the project never ran on does not count: the most frequent branch does.
        (
            None,
            None,
            {"main": 0, "develop": 7, "fix/z": 2},
            Resolution("develop", SOURCE_MOST_FREQUENT),
        ),
        # Most frequent, ties by branch name.
        (None, None, {"b": 4, "a": 4, "c": 1}, Resolution("a", SOURCE_MOST_FREQUENT)),
        # Empty answers are no answers.
        ("", "", {"develop": 1}, Resolution("develop", SOURCE_MOST_FREQUENT)),
        # Nothing known at all.
        (None, None, {}, Resolution(None, None)),
    ],
)
def test_the_sources_in_order(
    override: str | None, api: str | None, runs: Mapping[str, int], expected: Resolution
) -> None:
    assert resolve(override, api, runs) == expected


NOW = datetime(2026, 11, 20, 0, 1, tzinfo=UTC)
WEB = KnownProject("org-1", "p-web", "web", "https://github.com/acme/web")
API = KnownProject("org-1", "p-api", "api", "https://github.com/acme/api")
CLI = KnownProject("org-1", "p-cli", "cli", "https://gitlab.com/acme/cli")


def test_a_project_is_due_once_per_utc_day() -> None:
    checks = {
        # 00:00:30 today: done for today.
        WEB.key: ApiCheck("main", NOW - timedelta(seconds=30), None),
        # 23:59 yesterday (two minutes ago): due again.
        API.key: ApiCheck("main", NOW - timedelta(minutes=2), None),
        # CLI never checked: due.
    }
    assert due([WEB, API, CLI], checks, NOW) == [API, CLI]
    # The same instant in another zone is the same UTC day.
    assert due([WEB], checks, NOW.astimezone(ZoneInfo("America/Denver"))) == []


class FakeApi:
    """Answers by slug: a branch name, or an error to raise."""

    def __init__(self, answers: Mapping[str, str | UsageApiError]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def get_project(self, project_slug: str) -> Project:
        self.asked.append(project_slug)
        answer = self.answers[project_slug]
        if isinstance(answer, UsageApiError):
            raise answer
        return Project(
            project_slug, "x", "id", "acme", "gh/acme", "org-1", VcsInfo("u", "GitHub", answer)
        )


def test_api_answers_and_failures_are_recorded() -> None:
    api = FakeApi(
        {
            WEB.slug: "develop",
            API.slug: ProjectNotFoundError("GET /project/gh/acme/api -> HTTP 404", status_code=404),
            CLI.slug: ForbiddenError("GET /project/... -> HTTP 403", status_code=403),
        }
    )
    before = {API.key: ApiCheck("main", NOW - timedelta(days=1), None)}
    asked = ask_api(api, [WEB, API, CLI], before, NOW)
    assert api.asked == ["gh/acme/web", "gh/acme/api", "circleci/org-1/p-cli"]
    assert asked.checks == {
        WEB.key: ApiCheck("develop", NOW, None),
        # The project is gone or hidden: yesterday's answer no longer holds.
        API.key: ApiCheck(None, NOW, "ProjectNotFoundError: GET /project/gh/acme/api -> HTTP 404"),
        CLI.key: ApiCheck(None, NOW, "ForbiddenError: GET /project/... -> HTTP 403"),
    }
    assert len(asked.failures) == 2
    assert asked.skipped == 0


def test_an_api_that_stops_answering_keeps_the_last_answer_and_stops_asking() -> None:
    api = FakeApi({WEB.slug: ApiTransportError("GET /project/gh/acme/web failed: ReadTimeout")})
    before = {WEB.key: ApiCheck("trunk", NOW - timedelta(days=1), None)}
    asked = ask_api(api, [WEB, API, CLI], before, NOW)
    assert api.asked == ["gh/acme/web"]  # not API nor CLI, which stay due for the next run
    assert asked.checks == {
        WEB.key: ApiCheck(
            "trunk", NOW, "ApiTransportError: GET /project/gh/acme/web failed: ReadTimeout"
        )
    }
    assert asked.skipped == 2


OCT = date(2026, 10, 5)
LOADED = (date(2026, 10, 1), date(2026, 10, 31))


@pytest.fixture
def runs(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """web: 3 workflow runs on nightly/x, 2 on main, 1 on develop. api: 2 on feature/a."""
    insert(
        conn,
        [
            *[job(day=OCT, vcs_branch="nightly/x", vcs_url=WEB.vcs_url) for _ in range(3)],
            *[job(day=OCT, vcs_branch="main", vcs_url=WEB.vcs_url) for _ in range(2)],
            job(day=OCT, vcs_branch="develop", vcs_url=WEB.vcs_url),
            *[
                job(day=OCT, vcs_branch="feature/a", project_id="p-api", project_name="api")
                for _ in range(2)
            ],
        ],
    )
    workflow_runs.refresh(conn, *LOADED, "run-0")
    return conn


def table_rows(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT project_id, project_slug, default_branch, default_branch_source,"
        " api_default_branch, api_checked_at, api_error"
        " FROM circleci_insights.project_default_branches ORDER BY project_id"
    ).fetchall()


def test_the_table_and_the_performance_tables_resolve_the_same_way(
    runs: duckdb.DuckDBPyConnection,
) -> None:
    projects = default_branches.read_projects(runs)
    assert [p.key for p in projects] == [("org-1", "p-api"), ("org-1", "p-web")]
    checks = {("org-1", "p-web"): ApiCheck("develop", NOW, None)}
    rows = default_branches.resolve_all(
        projects, checks, [], default_branches.read_branch_runs(runs)
    )
    default_branches.write(runs, rows, "run-1")
    assert table_rows(runs) == [
        # No vcs_url on these rows: the circleci/ slug; no API answer: its only branch.
        ("p-api", "circleci/org-1/p-api", "feature/a", SOURCE_MOST_FREQUENT, None, None, None),
        ("p-web", "gh/acme/web", "develop", SOURCE_API, "develop", NOW, None),
    ]

    # The performance tables read the kept API answer: web's default scope is its 1 develop run.
    performance.refresh(runs, LOADED, "run-2")
    scoped = runs.execute(
        "SELECT project_id, default_branch, runs FROM circleci_insights.workflow_performance"
        " WHERE branch_scope = 'default' AND period = '2026-10' ORDER BY project_id"
    ).fetchall()
    assert scoped == [("p-api", "feature/a", 2), ("p-web", "develop", 1)]

    # The csv of the performance run beats the kept answer; the table's own rows are unchanged.
    performance.refresh(runs, LOADED, "run-3", default_branches=[DefaultBranch("web", "main")])
    (web,) = runs.execute(
        "SELECT default_branch, runs FROM circleci_insights.workflow_performance"
        " WHERE branch_scope = 'default' AND period = '2026-10' AND project_id = 'p-web'"
    ).fetchall()
    assert web == ("main", 2)


def test_without_the_table_the_performance_tables_fall_back(
    runs: duckdb.DuckDBPyConnection,
) -> None:
    # No API answer ever fetched: web's `main` (2 runs) beats nightly/x (3 runs).
    performance.refresh(runs, LOADED, "run-1")
    scoped = runs.execute(
        "SELECT project_id, default_branch, runs FROM circleci_insights.workflow_performance"
        " WHERE branch_scope = 'default' AND period = '2026-10' ORDER BY project_id"
    ).fetchall()
    assert scoped == [("p-api", "feature/a", 2), ("p-web", "main", 2)]
