"""Checks on the insights tables, as plain functions returning `RuleResult`s.

* **Coverage**: no day missing between the first and the last loaded day.
* **Sanity** per table: its grain is unique, no count, duration or credit is negative, rates and
  percentiles are in range, and every table adds up to its source (daily_usage to job_runs per
  day, costs to daily_usage, chargeback to costs).

The Dagster checks in `assets/insights.py` only wire these up. The daily tables' checks take the
days a run refreshed (`window`) and read only those (`usage_date` / `run_date BETWEEN`, which
DuckDB prunes), so they cost a window, not the history; without one they check the whole table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from usage_assets.circleci.vocabulary import SEAT_CREDITS_SQL
from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights import cost, daily_usage, forecast, performance, right_sizing
from usage_assets.insights import workflow_runs as workflow_runs_module
from usage_assets.insights.common import table

_TOLERANCE = 1e-6


def missing_day_ranges(loaded: Iterable[date]) -> list[tuple[date, date]]:
    """Gaps between the first and last of `loaded`, as inclusive (first, last) ranges."""
    days = sorted(set(loaded))
    gaps = []
    for before, after in itertools.pairwise(days):
        if (after - before).days > 1:
            gaps.append((before + timedelta(days=1), after - timedelta(days=1)))
    return gaps


def coverage(loaded: Iterable[date]) -> RuleResult:
    days = sorted(set(loaded))
    gaps = missing_day_ranges(days)
    missing = sum((last - first).days + 1 for first, last in gaps)
    text = ", ".join(str(a) if a == b else f"{a} .. {b}" for a, b in gaps)
    first, last = (days[0], days[-1]) if days else (None, None)
    return RuleResult(
        passed=not gaps,
        description=(
            f"every day from {first} to {last} is loaded"
            if days and not gaps
            else "nothing loaded yet"
            if not days
            else f"{missing} day(s) missing between {first} and {last}: {text}; backfill them"
        ),
        metadata={
            "first_loaded_day": str(first),
            "last_loaded_day": str(last),
            "missing_days": missing,
            "missing_ranges": text or "none",
        },
    )


@dataclass(frozen=True)
class _Violation:
    what: str
    count: int


Window = tuple[date, date]


def _where(column: str, window: Window | None) -> tuple[str, list[object]]:
    """The WHERE clause (and its parameters) restricting a daily table to `window`."""
    if window is None:
        return "", []
    return f" WHERE {column} BETWEEN ? AND ?", list(window)


def _violations(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    conditions: Sequence[tuple[str, str]],
    where: tuple[str, list[object]] = ("", []),
) -> list[_Violation]:
    """Rows of `name` (those `where` picks) matching each (what, SQL condition)."""
    if not conditions:
        return []
    counts = fetch_one(
        conn,
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {condition})" for _, condition in conditions)
        + f" FROM {table(name)}{where[0]}",
        where[1],
    )
    return [
        _Violation(what, int(count))
        for (what, _), count in zip(conditions, counts, strict=True)
        if count
    ]


def _duplicates(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    keys: Sequence[str],
    where: tuple[str, list[object]] = ("", []),
) -> list[_Violation]:
    # GROUP BY treats NULLs as equal, which is what a grain means here.
    (count,) = fetch_one(
        conn,
        f"SELECT count(*) FROM (SELECT 1 FROM {table(name)}{where[0]} GROUP BY {', '.join(keys)}"
        " HAVING count(*) > 1)",
        where[1],
    )
    return [_Violation(f"duplicated {' / '.join(keys)}", int(count))] if count else []


def _result(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    problems: list[_Violation],
    where: tuple[str, list[object]] = ("", []),
) -> RuleResult:
    (rows,) = fetch_one(conn, f"SELECT count(*) FROM {table(name)}{where[0]}", where[1])
    return RuleResult(
        passed=not problems,
        description=(
            f"{name}: {rows} rows, all sane"
            if not problems
            else f"{name}: " + "; ".join(f"{p.count} row(s) with {p.what}" for p in problems)
        ),
        metadata={"rows": int(rows), "problems": "; ".join(p.what for p in problems) or "none"},
    )


_NEGATIVE_CREDITS = " OR ".join(
    f"{column} < 0" for column in ("total_credits", "compute_credits", "job_seconds")
)


def daily_usage_sane(conn: duckdb.DuckDBPyConnection, window: Window | None = None) -> RuleResult:
    """daily_usage's grain, signs and per-day totals against job_runs, on the days of `window`
    (the whole table without one)."""
    name = daily_usage.NAME
    where = _where("usage_date", window)
    problems = _duplicates(conn, name, list(daily_usage.KEY_COLUMNS), where)
    problems += _violations(
        conn,
        name,
        [
            ("a negative count, duration or credit", _NEGATIVE_CREDITS + " OR job_runs <= 0"),
            (
                "more outcomes than runs",
                "successful_runs + failed_runs + canceled_runs > job_runs",
            ),
        ],
        where,
    )
    # Per day, the same job rows and credits as job_runs.
    (mismatched,) = fetch_one(
        conn,
        f"""
        SELECT count(*) FROM (
            SELECT usage_date, count(*) AS rows, coalesce(sum(total_credits), 0) AS credits
            FROM {JOB_RUNS}{where[0]} GROUP BY usage_date
        ) j FULL JOIN (
            SELECT usage_date, sum(job_runs) AS rows, sum(total_credits) AS credits
            FROM {daily_usage.DAILY_USAGE}{where[0]} GROUP BY usage_date
        ) d USING (usage_date)
        WHERE j.rows IS DISTINCT FROM d.rows OR abs(coalesce(j.credits, 0) - coalesce(d.credits, 0)) > ?
        """,
        [*where[1], *where[1], _TOLERANCE],
    )
    if mismatched:
        problems.append(
            _Violation(
                "a day whose job runs or credits differ from circleci.job_runs (refresh those days)",
                int(mismatched),
            )
        )
    return _result(conn, name, problems, where)


def workflow_runs_sane(conn: duckdb.DuckDBPyConnection, window: Window | None = None) -> RuleResult:
    """workflow_runs' grain (one row per workflow_id), statuses and signs, on the runs dated in
    `window` (the whole table without one). A workflow_id repeated on two run dates within the
    window is caught; one whose second row lies further away would be a refresh that missed a
    workflow's old row, which `workflow_runs.old_rows_range` rules out."""
    name = workflow_runs_module.NAME
    where = _where("run_date", window)
    statuses = ", ".join(f"'{s}'" for s in workflow_runs_module.WORKFLOW_STATUSES)
    problems = _duplicates(conn, name, ["workflow_id"], where)
    problems += _violations(
        conn,
        name,
        [
            ("a negative duration or credit", "duration_seconds < 0 OR total_credits < 0"),
            ("an unknown status", f"status NOT IN ({statuses})"),
            (
                "a finished run without a duration",
                "status = 'success' AND duration_seconds IS NULL",
            ),
        ],
        where,
    )
    return _result(conn, name, problems, where)


def _performance_sane(
    conn: duckdb.DuckDBPyConnection, name: str, keys: Sequence[str]
) -> RuleResult:
    problems = _duplicates(conn, name, ["period", "branch_scope", *keys])
    problems += _violations(
        conn,
        name,
        [
            ("a success rate outside 0..1", "success_rate < 0 OR success_rate > 1"),
            ("p50 above p95", "p50_duration_seconds > p95_duration_seconds + 1e-9"),
            ("more outcomes than runs", "successful_runs + failed_runs + canceled_runs > runs"),
            ("negative credits or throughput", "total_credits < 0 OR throughput < 0"),
            ("failed-run credits above the total", "failed_run_credits > total_credits + 1e-6"),
            (
                "Insights credits (compute + DLC) above the total",
                "insights_credits < 0 OR insights_credits > total_credits + 1e-6",
            ),
            ("more completed runs than runs", "completed_runs > runs"),
        ],
    )
    return _result(conn, name, problems)


def workflow_performance_sane(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    return _performance_sane(
        conn, performance.WORKFLOW_NAME, ["organization_id", "project_id", "workflow_name"]
    )


def job_performance_sane(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    return _performance_sane(
        conn,
        performance.JOB_NAME,
        ["organization_id", "project_id", "workflow_name", "job_name"],
    )


def right_sizing_sane(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    name = right_sizing.NAME
    problems = _duplicates(
        conn, name, ["organization_id", "project_id", "job_name", "executor", "resource_class"]
    )
    problems += _violations(
        conn,
        name,
        [
            ("negative savings", "est_credits_saved_per_month < 0"),
            (
                "savings without a downsize",
                f"est_credits_saved_per_month > 0 AND recommendation <> '{right_sizing.DOWNSIZE}'",
            ),
            (
                "a downsize without a class",
                f"recommendation = '{right_sizing.DOWNSIZE}' AND suggested_class IS NULL",
            ),
            (
                "utilisation outside 0..100",
                "cpu_p95_pct < 0 OR cpu_p95_pct > 100 OR ram_p95_pct < 0 OR ram_p95_pct > 100",
            ),
        ],
    )
    return _result(conn, name, problems)


def credit_costs_sane(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    name = cost.COSTS_NAME
    problems = _duplicates(conn, name, ["usage_date", "organization_id", "cost_line", "project_id"])
    problems += _violations(
        conn,
        name,
        [
            (
                "a cost that is not credits x price",
                "abs(cost - credits * price_per_credit) > 1e-6",
            ),
            ("a negative cost", "cost < 0"),
            (
                "an unknown cost line, or a seat-fee line charged to a project or team",
                f"cost_line NOT IN ('{cost.JOB_RUNS_LINE}', '{cost.SEAT_FEES_LINE}')"
                f" OR (cost_line = '{cost.SEAT_FEES_LINE}'"
                " AND (project_id IS NOT NULL OR team IS NOT NULL))",
            ),
        ],
    )
    # Job lines plus seat lines are all of daily_usage's credits, and the seat lines are exactly
    # its seat credits (so no seat credit hides in a project's job line).
    total_difference, seat_difference = fetch_one(
        conn,
        f"""SELECT abs(c.credits - d.credits), abs(c.seats - d.seats) FROM
            (SELECT coalesce(sum(credits), 0) AS credits,
                coalesce(sum(credits) FILTER (WHERE cost_line = '{cost.SEAT_FEES_LINE}'), 0)
                    AS seats
             FROM {cost.CREDIT_COSTS}) c,
            (SELECT coalesce(sum(total_credits), 0) AS credits,
                coalesce(sum({SEAT_CREDITS_SQL}), 0) AS seats
             FROM {daily_usage.DAILY_USAGE}) d""",
    )
    if total_difference > _TOLERANCE:
        problems.append(_Violation("credits that do not add up to daily_usage (total)", 1))
    if seat_difference > _TOLERANCE:
        problems.append(
            _Violation("seat-fee lines that differ from daily_usage's user_credits (total)", 1)
        )
    return _result(conn, name, problems)


def team_chargeback_sane(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    name = cost.CHARGEBACK_NAME
    problems = _duplicates(
        conn, name, ["month", "team", "organization_id", "cost_line", "project_id", "currency"]
    )
    (difference,) = fetch_one(
        conn,
        f"SELECT abs((SELECT coalesce(sum(credits), 0) FROM {cost.TEAM_CHARGEBACK})"
        f" - (SELECT coalesce(sum(credits), 0) FROM {cost.CREDIT_COSTS}))",
    )
    if difference > _TOLERANCE:
        problems.append(_Violation("credits that do not add up to credit_costs (total)", 1))
    return _result(conn, name, problems)


def credit_forecast_sane(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    name = forecast.NAME
    problems = _duplicates(conn, name, ["scope", "organization_id", "project_id"])
    problems += _violations(
        conn,
        name,
        [
            ("a projection below month-to-date", "projected_month_credits < mtd_credits - 1e-6"),
            ("negative credits", "mtd_credits < 0 OR mtd_seat_credits < 0"),
            ("days elapsed outside the month", "days_elapsed < 1 OR days_elapsed > days_in_month"),
        ],
    )
    return _result(conn, name, problems)


def report_self_contained(path: Path) -> RuleResult:
    """The report opens anywhere, offline: one file, no scripts, nothing fetched from elsewhere."""
    if not path.is_file():
        return RuleResult(False, f"{path} was not written")
    html = path.read_text(encoding="utf-8")
    lowered = html.lower()
    found = [
        marker
        for marker in ("<script", "http://", "https://", "<link", "<iframe", "@import", "url(")
        if marker in lowered
    ]
    charts = lowered.count("<svg")
    return RuleResult(
        passed=not found and charts >= 4,
        description=(
            f"self-contained, {charts} charts, {len(html):,} characters"
            if not found and charts >= 4
            else f"not self-contained or incomplete: found {', '.join(found) or 'no issue'}, {charts} chart(s)"
        ),
        metadata={
            "charts": charts,
            "bytes": len(html.encode()),
            "external_references": ", ".join(found) or "none",
        },
    )
