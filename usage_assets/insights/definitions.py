"""The performance metrics' definitions, written once: the README's "Definitions" list, the column
descriptions Dagster shows for `workflow_performance` / `job_performance`, and the report's notes
are all rendered from `DEFINITIONS`.

Each definition says where it comes from. `INSIGHTS` cites the line of CircleCI's Insights metrics
glossary it follows exactly (https://circleci.com/docs/insights-glossary/; read in circleci-docs at
9734a14, 2026-08-20); `OURS` marks a figure of this project's own, named so that nobody takes it for
an Insights number. The SQL that computes each figure lives in `performance.py`, next to these
names; `usage_assets_tests/insights/test_performance.py` checks each Insights-named column against
its glossary formula.

`python -m usage_assets.insights.definitions README.md` rewrites the README's list between its
markers (a test fails while the README and this module disagree).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

INSIGHTS = "insights"
OURS = "ours"

_GLOSSARY = "Insights metrics glossary"


@dataclass(frozen=True)
class Definition:
    term: str
    columns: tuple[str, ...]  # the performance-table columns it defines
    text: str
    origin: str  # INSIGHTS or OURS
    source: str  # the glossary line followed, or why the figure is ours

    def markdown(self) -> str:
        columns = ", ".join(f"`{c}`" for c in self.columns)
        tag = "as in Insights" if self.origin == INSIGHTS else "ours"
        return f"- **{self.term}** ({columns}; {tag}): {self.text} _{self.source}_"


DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "runs",
        ("runs", "successful_runs", "failed_runs", "canceled_runs", "completed_runs"),
        "every run that started in the period, whatever its outcome, running and on-hold ones "
        "included. Job runs are rows with a job name (jobs that never ran are counted in "
        "`daily_usage.job_runs`, not here). Completed runs have stopped: a workflow with a stop "
        "time; a job that succeeded, failed or was canceled. Failed includes "
        "`infrastructure_fail` and `timedout`.",
        INSIGHTS,
        f'{_GLOSSARY}, General metrics, "Runs": "The count of executions in a selected time '
        'window"; Insights API `total_runs` includes runs "still on-hold or running".',
    ),
    Definition(
        "success rate",
        ("success_rate",),
        "successful / (all runs - canceled runs). Runs without an outcome yet (running, "
        "queued, blocked) stay in the denominator, as Insights keeps them.",
        INSIGHTS,
        f'{_GLOSSARY}, General metrics, "Success Rate": "Calculated by 100 x (Successful Runs '
        '/ All Runs - Cancelled Runs)"; canceled runs are excluded since January 2024.',
    ),
    Definition(
        "p50 / p95 duration",
        ("p50_duration_seconds", "p95_duration_seconds"),
        "the 50th and 95th percentile of the durations of the period's completed runs, of any "
        "outcome, interpolated between the two nearest runs (DuckDB `quantile_cont`; Insights "
        "does not publish its method and its API returns whole seconds). A workflow's duration "
        "is its first job's start to its stop (holds included: CircleCI measures wall time); a "
        "job's is `job_run_seconds`.",
        INSIGHTS,
        f'{_GLOSSARY}, General metrics, "P95 Duration": "The 95th percentile of execution times '
        'for an entity in a selected time window", "P50 (median) Duration"; CircleCI\'s April '
        '2023 product update: duration metrics "only use completed workflows".',
    ),
    Definition(
        "p50 / p95 successful duration",
        ("p50_successful_duration_seconds", "p95_successful_duration_seconds"),
        "the same percentiles over successful runs only: a job failing in its first seconds "
        "does not make a workflow look fast.",
        OURS,
        "No Insights counterpart; an extra, named apart from Insights' percentiles.",
    ),
    Definition(
        "throughput",
        ("throughput",),
        "runs per day: runs / the period's loaded days.",
        INSIGHTS,
        f'{_GLOSSARY}, Workflow metrics, "Throughput": "Calculated by Sum of builds / # of '
        'days" (here the days loaded, which equal the window once it is loaded).',
    ),
    Definition(
        "Insights credits",
        ("insights_credits",),
        "compute + DLC credits of the period's runs: the figure Insights calls Total Credits.",
        INSIGHTS,
        f'{_GLOSSARY}, General metrics, "Total Credits": "The sum of Docker layer caching (DLC) '
        'and compute credits during execution".',
    ),
    Definition(
        "total credits",
        ("total_credits", "failed_run_credits"),
        "all eight credit components of the period's runs (compute, DLC, user, storage, "
        "network, lease, lease overage, IP ranges): the export's TOTAL_CREDITS. "
        "`failed_run_credits` is the part spent on failed runs.",
        OURS,
        "Insights leaves storage, network, IP ranges, user and lease credits out of its total; "
        "this is the export's own total.",
    ),
    Definition(
        "Insights' duration trends",
        ("p95_duration_trend", "p50_duration_trend"),
        "`current / benchmark - 1` (0.25 = 25 % slower), where the p95 benchmark is the worst "
        "daily p95 of the previous period and the p50 benchmark the median of its daily p50s "
        "(days with completed runs). Insights shows `100 x` this; its API the ratio plus 1.",
        INSIGHTS,
        f'{_GLOSSARY}, Trends, "Approximate Trends": "For P95 duration ... the worst/largest '
        'daily P95 duration of the previous 7 days as a benchmark"; "For P50 duration ... the '
        'median of the daily P50 values as a benchmark".',
    ),
    Definition(
        "Insights' trends",
        ("success_rate_trend", "throughput_trend", "insights_credits_trend"),
        "`current / previous - 1` against the previous period; credits compared per day, so a "
        "month still under way compares like with like.",
        INSIGHTS,
        f'{_GLOSSARY}, Trends: "calculated as 100 * (current value - previous value) / '
        'prior-value". Insights trends only its 24-hour, 7-day and 30-day windows: the '
        "`last_30_days` rows are that window, month rows apply the same rule month over month.",
    ),
    Definition(
        "total credits trend",
        ("total_credits_trend",),
        "`current / previous - 1` of all eight credit components per day.",
        OURS,
        "Insights trends only compute + DLC credits.",
    ),
    Definition(
        "trend gaps",
        (
            "success_rate_trend",
            "p95_duration_trend",
            "p50_duration_trend",
            "throughput_trend",
            "insights_credits_trend",
            "total_credits_trend",
        ),
        "every trend is empty when the previous period has fewer than 7 loaded days (a trend "
        "resting on a day or two is noise) or nothing to compare with.",
        OURS,
        "Insights has the whole history; a warehouse loaded from a recent day does not.",
    ),
    Definition(
        "branch scope",
        ("branch_scope",),
        "`all` branches, or only the project's `default` branch (next).",
        INSIGHTS,
        'Insights API: "If not passed we will scope the API call to the default branch"; '
        "`all-branches` widens it.",
    ),
    Definition(
        "default branch",
        ("default_branch", "default_branch_source"),
        "the first of: `default_branches.csv`; CircleCI's `vcs_info.default_branch` (`GET "
        "/project/{project-slug}`, asked by `project_default_branches` at most once per project "
        "per UTC day, in the load run, never in a sensor tick); `main`, `master` or `trunk` if "
        "the project ran workflows on it; the branch most of its workflow runs use. "
        "`default_branch_source` says which (`default_branches.csv`, `api`, "
        "`conventional_name`, `most_frequent`). The slug comes from the export's VCS_URL "
        "(`https://github.com/o/r` -> `gh/o/r`, Bitbucket -> `bb/...`, anything else -> "
        "`circleci/<org id>/<project id>`, the GitHub App/GitLab form), a partly unverified "
        "mapping: a wrong slug, a project the token may not read (404/403), a timeout or an "
        "outage only costs the API answer; the project falls back, the run logs a warning and "
        "records `api_error`.",
        OURS,
        "The order is ours; its second source is the branch Insights itself scopes to. The most "
        "frequent branch alone was a scheduled feature branch in half of a real export's busiest "
        "projects.",
    ),
)

START_MARKER = "<!-- definitions:start (generated from usage_assets/insights/definitions.py) -->"
END_MARKER = "<!-- definitions:end -->"


def markdown() -> str:
    """The definitions as the README's bullet list."""
    return "\n".join(d.markdown() for d in DEFINITIONS)


def column_descriptions() -> dict[str, str]:
    """Column -> the first definition naming it, for Dagster's column schema."""
    descriptions: dict[str, str] = {}
    for definition in DEFINITIONS:
        tag = "as in CircleCI Insights" if definition.origin == INSIGHTS else "ours"
        for column in definition.columns:
            descriptions.setdefault(column, f"{definition.term} ({tag}): {definition.text}")
    return descriptions


def with_definitions(readme: str) -> str:
    """`readme` with the text between the markers replaced by `markdown()`."""
    start = readme.index(START_MARKER) + len(START_MARKER)
    end = readme.index(END_MARKER)
    return readme[:start] + "\n" + markdown() + "\n" + readme[end:]


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "README.md")
    path.write_text(with_definitions(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
