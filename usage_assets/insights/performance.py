"""Workflow and job performance in CircleCI Insights' terms, for every month and the last 30 days.

What each column means, and which Insights glossary line it follows, is defined once in
`usage_assets.insights.definitions` (rendered into the README and the Dagster column schema); the
SQL here computes exactly that. In short: success rate = successful / (runs - canceled); p50/p95
over completed runs of any outcome; Insights credits = compute + DLC beside the total of all eight
components; duration trends against Insights' benchmarks (the previous period's worst daily p95,
the median of its daily p50s).

Periods are clipped to the loaded days: a month whose first days were never loaded counts only
its loaded days, so throughput stays a per-day rate.

A refresh is incremental: only the periods whose signature changed (`rollup_state`: bounds,
previous bounds, the fingerprints of the days both cover, the default branches, the SQL) are
recomputed, reading only those periods' and their predecessors' days; their rows and the state
are replaced in one transaction. A new day touches about four periods (its month, the last 30
days, and their predecessors, read for the trends), not the 16 of 13 months of history.
`full_rebuild=True` ignores the state and gives the same tables.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from usage_assets.circleci.vocabulary import CANCELED_STATUS, SUCCESS_STATUS
from usage_assets.ingest.duckdb_sql import fetch_one, transaction
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights import rollup_state
from usage_assets.insights.common import FAILURE_SQL, create_rebuilt_table, table
from usage_assets.insights.default_branches import current as current_default_branches
from usage_assets.insights.reference_data import DefaultBranch
from usage_assets.insights.workflow_runs import WORKFLOW_RUNS

WORKFLOW_NAME = "workflow_performance"
JOB_NAME = "job_performance"
ROLLING_DAYS = 30
MIN_PREVIOUS_DAYS = 7
ROLLING_LABEL = "last_30_days"
_PREVIOUS_ROLLING_LABEL = "previous_30_days"


@dataclass(frozen=True)
class Period:
    label: str  # "2026-10" or "last_30_days"
    kind: str  # "month", "rolling", or "previous" (only the rolling period's predecessor)
    start: date
    end: date
    previous_label: str | None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def performance_periods(first: date, last: date) -> list[Period]:
    """Every calendar month touching [first, last], the last 30 days and their predecessor, all
    clipped to [first, last] (the loaded days)."""
    periods: list[Period] = []
    month = _month_start(first)
    previous: str | None = None
    while month <= last:
        label = f"{month:%Y-%m}"
        periods.append(
            Period(label, "month", max(month, first), min(_month_end(month), last), previous)
        )
        previous = label
        month = _month_end(month) + timedelta(days=1)
    rolling_start = max(last - timedelta(days=ROLLING_DAYS - 1), first)
    previous_end = last - timedelta(days=ROLLING_DAYS)
    has_previous = previous_end >= first
    periods.append(
        Period(
            ROLLING_LABEL,
            "rolling",
            rolling_start,
            last,
            _PREVIOUS_ROLLING_LABEL if has_previous else None,
        )
    )
    if has_previous:
        periods.append(
            Period(
                _PREVIOUS_ROLLING_LABEL,
                "previous",
                max(last - timedelta(days=2 * ROLLING_DAYS - 1), first),
                previous_end,
                None,
            )
        )
    return periods


_PERIOD_COLUMNS: dict[str, str] = {
    "period": "VARCHAR",
    "period_kind": "VARCHAR",
    "period_start": "DATE",
    "period_end": "DATE",
    "period_days": "BIGINT",
    "branch_scope": "VARCHAR",
    "default_branch": "VARCHAR",
    "default_branch_source": "VARCHAR",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "project_id": "VARCHAR",
    "project_name": "VARCHAR",
    "workflow_name": "VARCHAR",
}
_METRIC_COLUMNS: dict[str, str] = {
    "runs": "BIGINT",
    "successful_runs": "BIGINT",
    "failed_runs": "BIGINT",
    "canceled_runs": "BIGINT",
    "completed_runs": "BIGINT",
    "success_rate": "DOUBLE",
    "p50_duration_seconds": "DOUBLE",
    "p95_duration_seconds": "DOUBLE",
    "p50_successful_duration_seconds": "DOUBLE",
    "p95_successful_duration_seconds": "DOUBLE",
    "throughput": "DOUBLE",
    "insights_credits": "DOUBLE",
    "total_credits": "DOUBLE",
    "failed_run_credits": "DOUBLE",
    "success_rate_trend": "DOUBLE",
    "p95_duration_trend": "DOUBLE",
    "p50_duration_trend": "DOUBLE",
    "throughput_trend": "DOUBLE",
    "insights_credits_trend": "DOUBLE",
    "total_credits_trend": "DOUBLE",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}
WORKFLOW_COLUMNS: dict[str, str] = {**_PERIOD_COLUMNS, **_METRIC_COLUMNS}
JOB_COLUMNS: dict[str, str] = {**_PERIOD_COLUMNS, "job_name": "VARCHAR", **_METRIC_COLUMNS}

# The rules of `definitions`, each written once and used by the tables and the weekly chart alike.
# A run's `status` is success, failed, canceled or other; `completed` says it has stopped.
SUCCESS_RATE_SQL = (
    "count(*) FILTER (WHERE status = 'success')"
    " / nullif(count(*) - count(*) FILTER (WHERE status = 'canceled'), 0)"
)


def completed_percentile_sql(fraction: float) -> str:
    """A percentile of the durations of completed runs, of any outcome (Insights' p50/p95)."""
    return f"quantile_cont(duration_seconds, {fraction}) FILTER (WHERE completed)"


# Each source yields the same columns: one row per run. `{days}` is the source's day filter
# (`_days_filter`): a recompute reads only the days of the periods it computes.
_WORKFLOW_SOURCE = f"""
    SELECT run_date, organization_id, organization_name, project_id, project_name, workflow_name,
        branch, status, duration_seconds IS NOT NULL AS completed, duration_seconds,
        insights_credits, total_credits
    FROM {WORKFLOW_RUNS}
    WHERE {{days}}
"""
_JOB_SOURCE = f"""
    SELECT usage_date AS run_date, organization_id, organization_name, project_id, project_name,
        workflow_name, job_name, vcs_branch AS branch,
        CASE
            WHEN job_build_status = '{SUCCESS_STATUS}' THEN 'success'
            WHEN job_build_status IN {FAILURE_SQL} THEN 'failed'
            WHEN job_build_status = '{CANCELED_STATUS}' THEN 'canceled'
            ELSE 'other'
        END AS status,
        job_run_seconds IS NOT NULL AND (
            job_build_status IN ('{SUCCESS_STATUS}', '{CANCELED_STATUS}')
            OR job_build_status IN {FAILURE_SQL}
        ) AS completed,
        job_run_seconds AS duration_seconds,
        coalesce(compute_credits, 0) + coalesce(dlc_credits, 0) AS insights_credits,
        total_credits
    FROM {JOB_RUNS}
    WHERE job_name IS NOT NULL AND {{days}}
"""

# Per day of a source table, the fingerprint of its rows (see `rollup_state`): count and a sum of
# row hashes (a sum, not bit_xor: two identical rows do not cancel out). The hashed columns
# identify a row version: the loader stamps every job_runs row with its run id and its
# transaction's time (`loaded_at`), and `insights_daily` every workflow_runs row likewise, so any
# rewrite of a row changes the hash; the id and credits keep it right for rows written otherwise
# (the tests', a manual repair). Only narrow columns: the pass reads the whole table every run
# (measured at 4.5 M job runs: 0.7 s, against ~10 s for the whole job_performance query; without
# job_id 0.2 s, but then a row written without run id and time would go unnoticed).
_JOB_FINGERPRINT = f"""
    SELECT usage_date, count(*),
        sum(hash(job_id, load_run_id, loaded_at, total_credits)::HUGEINT)
    FROM {JOB_RUNS} GROUP BY usage_date
"""
_WORKFLOW_FINGERPRINT = f"""
    SELECT run_date, count(*),
        sum(hash(workflow_id, insights_run_id, refreshed_at, insights_credits, total_credits)
            ::HUGEINT)
    FROM {WORKFLOW_RUNS} GROUP BY run_date
"""

# Part of every period's signature beside the SQL text itself: bump it when a period's rows change
# for a reason the SQL text does not show (say, how `performance_periods` clips), so that the
# next refresh recomputes every period.
CODE_VERSION = 1


def _trend(current: str, previous: str) -> str:
    return f"CASE WHEN ({previous}) > 0 THEN ({current}) / ({previous}) - 1 END"


def _metrics_sql(source: str, keys: Sequence[str]) -> str:
    key_list = ", ".join(keys)
    join_keys = " AND ".join(f"prev.{key} = m.{key}" for key in ("branch_scope", *keys))
    bench_keys = " AND ".join(f"b.{key} = m.{key}" for key in ("branch_scope", *keys))
    return f"""
        WITH runs AS (
            SELECT r.*, p.label, d.default_branch, d.default_branch_source
            FROM ({source}) r
            JOIN _periods p ON r.run_date BETWEEN p.period_start AND p.period_end
            LEFT JOIN _default_branches d USING (organization_id, project_id)
        ),
        scoped AS (
            SELECT 'all' AS branch_scope, * FROM runs
            UNION ALL
            SELECT 'default' AS branch_scope, * FROM runs WHERE branch = default_branch
        ),
        m AS (
            SELECT label, branch_scope, {key_list},
                any_value(default_branch) AS default_branch,
                any_value(default_branch_source) AS default_branch_source,
                any_value(organization_name) AS organization_name,
                any_value(project_name) AS project_name,
                count(*) AS runs,
                count(*) FILTER (WHERE status = 'success') AS successful_runs,
                count(*) FILTER (WHERE status = 'failed') AS failed_runs,
                count(*) FILTER (WHERE status = 'canceled') AS canceled_runs,
                count(*) FILTER (WHERE completed) AS completed_runs,
                {SUCCESS_RATE_SQL} AS success_rate,
                {completed_percentile_sql(0.5)} AS p50,
                {completed_percentile_sql(0.95)} AS p95,
                quantile_cont(duration_seconds, 0.5) FILTER (WHERE status = 'success')
                    AS p50_successful,
                quantile_cont(duration_seconds, 0.95) FILTER (WHERE status = 'success')
                    AS p95_successful,
                coalesce(sum(insights_credits), 0) AS insights_credits,
                coalesce(sum(total_credits), 0) AS credits,
                coalesce(sum(total_credits) FILTER (WHERE status = 'failed'), 0) AS failed_credits
            FROM scoped
            GROUP BY label, branch_scope, {key_list}
        ),
        -- Insights' duration benchmarks: per period, the worst daily p95 and the median of the
        -- daily p50s (days with completed runs).
        daily AS (
            SELECT label, branch_scope, {key_list}, run_date,
                {completed_percentile_sql(0.5)} AS p50,
                {completed_percentile_sql(0.95)} AS p95
            FROM scoped
            GROUP BY label, branch_scope, {key_list}, run_date
        ),
        benchmarks AS (
            SELECT label, branch_scope, {key_list},
                max(p95) AS worst_daily_p95,
                quantile_cont(p50, 0.5) AS median_daily_p50
            FROM daily
            GROUP BY label, branch_scope, {key_list}
        ),
        rated AS (
            SELECT m.*, p.kind, p.period_start, p.period_end, p.days, p.previous_label,
                p.publish, m.runs / p.days AS throughput
            FROM m JOIN _periods p ON p.label = m.label
        )
        SELECT m.label, m.kind, m.period_start, m.period_end, m.days, m.branch_scope,
            m.default_branch, m.default_branch_source, m.organization_id, m.organization_name,
            m.project_id,
            m.project_name, {", ".join(f"m.{key}" for key in keys if key not in ("organization_id", "project_id"))},
            m.runs, m.successful_runs, m.failed_runs, m.canceled_runs, m.completed_runs,
            m.success_rate, m.p50, m.p95, m.p50_successful, m.p95_successful, m.throughput,
            m.insights_credits, m.credits, m.failed_credits,
            {_trend("m.success_rate", "prev.success_rate")},
            {_trend("m.p95", "b.worst_daily_p95")},
            {_trend("m.p50", "b.median_daily_p50")},
            {_trend("m.throughput", "prev.throughput")},
            {_trend("m.insights_credits / m.days", "prev.insights_credits / prev.days")},
            {_trend("m.credits / m.days", "prev.credits / prev.days")},
            ?, now()
        FROM rated m
        LEFT JOIN rated prev
            ON prev.label = m.previous_label AND prev.days >= {MIN_PREVIOUS_DAYS} AND {join_keys}
        LEFT JOIN benchmarks b ON b.label = prev.label AND {bench_keys}
        -- Predecessors computed only for the trends keep their stored rows.
        WHERE m.kind <> 'previous' AND m.publish
    """


def _default_branch_rows(
    conn: duckdb.DuckDBPyConnection, overrides: Sequence[DefaultBranch]
) -> list[tuple[str, str, str, str]]:
    """(organization_id, project_id, default branch, source) of every project with one, sorted:
    what the tables join, and (hashed) part of every period's signature."""
    return sorted(
        (
            r.project.organization_id,
            r.project.project_id,
            str(r.resolution.branch),
            str(r.resolution.source),
        )
        for r in current_default_branches(conn, overrides)
        if r.resolution.branch
    )


def _prepare(
    conn: duckdb.DuckDBPyConnection,
    periods: Sequence[Period],
    publish: Sequence[str],
    branches: Sequence[tuple[str, str, str, str]],
) -> None:
    """The query's temp tables: the periods to compute (`publish`: those whose rows are written;
    the others are predecessors, read for the trends) and the default branches."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _periods (label VARCHAR, kind VARCHAR, period_start DATE,"
        " period_end DATE, days BIGINT, previous_label VARCHAR, publish BOOLEAN)"
    )
    if periods:
        conn.executemany(
            "INSERT INTO _periods VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                [p.label, p.kind, p.start, p.end, p.days, p.previous_label, p.label in publish]
                for p in periods
            ],
        )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _default_branches (organization_id VARCHAR,"
        " project_id VARCHAR, default_branch VARCHAR, default_branch_source VARCHAR)"
    )
    if branches:
        conn.executemany("INSERT INTO _default_branches VALUES (?, ?, ?, ?)", branches)


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    create_rebuilt_table(conn, WORKFLOW_NAME, WORKFLOW_COLUMNS)
    create_rebuilt_table(conn, JOB_NAME, JOB_COLUMNS)
    rollup_state.ensure_table(conn)


@dataclass(frozen=True)
class _Table:
    columns: Mapping[str, str]
    source: str  # with a `{days}` placeholder
    day_column: str  # the source table's day column, which its storage is pruned by
    fingerprint: str  # per day: (day, rows, hash sum)
    keys: tuple[str, ...]


_TABLES: dict[str, _Table] = {
    WORKFLOW_NAME: _Table(
        WORKFLOW_COLUMNS,
        _WORKFLOW_SOURCE,
        "run_date",
        _WORKFLOW_FINGERPRINT,
        ("organization_id", "project_id", "workflow_name"),
    ),
    JOB_NAME: _Table(
        JOB_COLUMNS,
        _JOB_SOURCE,
        "usage_date",
        _JOB_FINGERPRINT,
        ("organization_id", "project_id", "workflow_name", "job_name"),
    ),
}


@dataclass(frozen=True)
class Refreshed:
    """What one table's refresh did."""

    rows: int  # the table's rows afterwards
    recomputed: tuple[str, ...]  # periods whose rows were replaced
    kept: tuple[str, ...]  # periods left as they were
    dropped: tuple[str, ...]  # periods no longer loaded, deleted
    full_rebuild: bool
    reason: str  # why a full rebuild: requested, no state, a corrupt state ("" otherwise)
    days_read: tuple[tuple[date, date], ...] = ()  # the source days the recompute read


def _days_filter(column: str, ranges: Sequence[tuple[date, date]]) -> str:
    """A filter on `column` for the day ranges: BETWEENs of literal dates (from `date` values,
    never text), which DuckDB turns into row-group and DuckLake-file pruning."""
    if not ranges:
        return "FALSE"
    return (
        "("
        + " OR ".join(
            f"{column} BETWEEN DATE '{start.isoformat()}' AND DATE '{end.isoformat()}'"
            for start, end in ranges
        )
        + ")"
    )


def _bounds(period: Period) -> rollup_state.Bounds:
    return rollup_state.Bounds(period.label, period.kind, period.start, period.end)


def signatures(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    periods: Sequence[Period],
    branches: Sequence[tuple[str, str, str, str]],
) -> dict[str, str]:
    """The current signature of each published period of table `name` (see `rollup_state`)."""
    spec = _TABLES[name]
    fingerprints = {
        day: f"{rows}:{total}" for day, rows, total in conn.execute(spec.fingerprint).fetchall()
    }
    code = rollup_state.digest(
        CODE_VERSION, dict(spec.columns), _metrics_sql(spec.source, spec.keys)
    )
    branch_hash = rollup_state.digest(list(branches))
    by_label = {p.label: p for p in periods}
    return {
        p.label: rollup_state.period_signature(
            code,
            branch_hash,
            _bounds(p),
            _bounds(by_label[p.previous_label]) if p.previous_label else None,
            fingerprints,
        )
        for p in periods
        if p.kind != "previous"
    }


def refresh(
    conn: duckdb.DuckDBPyConnection,
    loaded: tuple[date, date] | None,
    run_id: str,
    *,
    default_branches: Sequence[DefaultBranch] = (),
    which: Sequence[str] = (WORKFLOW_NAME, JOB_NAME),
    full_rebuild: bool = False,
) -> dict[str, Refreshed]:
    """Refresh `workflow_performance` and/or `job_performance`: recompute the periods whose
    signature changed (all of them with `full_rebuild`, or when the state is missing or corrupt),
    delete those no longer loaded, keep the others."""
    ensure_tables(conn)
    periods = performance_periods(*loaded) if loaded else []
    branches = _default_branch_rows(conn, default_branches)
    return {
        name: _refresh_table(conn, name, periods, branches, run_id, full_rebuild) for name in which
    }


def _refresh_table(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    periods: Sequence[Period],
    branches: Sequence[tuple[str, str, str, str]],
    run_id: str,
    full_rebuild: bool,
) -> Refreshed:
    """One transaction from the fingerprints to the state: the signatures stored describe the
    very rows the recompute read, even while a load commits beside it (a DuckLake)."""
    spec = _TABLES[name]
    with transaction(conn):
        current = signatures(conn, name, periods, branches)
        stored, reason = (None, "requested") if full_rebuild else rollup_state.read(conn, name)
        plan = rollup_state.plan(stored, current, full_rebuild=stored is None, reason=reason)
        days_read: list[tuple[date, date]] = []
        if plan.recompute or plan.drop or plan.full_rebuild:
            days_read = _replace_periods(conn, name, spec, periods, plan, branches, current, run_id)
        (rows,) = fetch_one(conn, f"SELECT count(*) FROM {table(name)}")
    return Refreshed(
        rows=int(rows),
        recomputed=plan.recompute,
        kept=plan.keep,
        dropped=plan.drop,
        full_rebuild=plan.full_rebuild,
        reason=plan.reason,
        days_read=tuple(days_read),
    )


def _replace_periods(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    spec: _Table,
    periods: Sequence[Period],
    plan: rollup_state.Plan,
    branches: Sequence[tuple[str, str, str, str]],
    current: Mapping[str, str],
    run_id: str,
) -> list[tuple[date, date]]:
    """In the caller's transaction: delete the recomputed and dropped periods' rows, insert the
    recomputed ones (reading only their and their predecessors' days), update the state; returns
    the day ranges read."""
    by_label = {p.label: p for p in periods}
    # The recomputed periods and their predecessors (the trends' baseline): all read, only the
    # recomputed ones written.
    needed = set(plan.recompute)
    needed.update(
        str(by_label[label].previous_label)
        for label in plan.recompute
        if by_label[label].previous_label
    )
    computed = [p for p in periods if p.label in needed]
    _prepare(conn, computed, plan.recompute, branches)
    ranges = rollup_state.merged_ranges(_bounds(p) for p in computed)
    source = spec.source.replace("{days}", _days_filter(spec.day_column, ranges))
    if plan.full_rebuild:
        conn.execute(f"DELETE FROM {table(name)}")
        rollup_state.forget(conn, name)
    else:
        conn.execute(
            f"DELETE FROM {table(name)} WHERE list_contains(?::VARCHAR[], period)",
            [[*plan.recompute, *plan.drop]],
        )
    if plan.recompute:
        conn.execute(
            f"INSERT INTO {table(name)} ({', '.join(spec.columns)})"
            f" {_metrics_sql(source, spec.keys)}",
            [run_id],
        )
    rollup_state.write(conn, name, current, [*plan.recompute, *plan.drop], run_id)
    return ranges


@dataclass(frozen=True)
class WeeklyPoint:
    week: date  # the Monday starting the week
    series: str  # "project / workflow"
    p95_duration_seconds: float | None
    success_rate: float | None


def full_weeks(first: date, last: date) -> tuple[date, date]:
    """The Monday-to-Sunday weeks inside [first, last]; the whole range when that leaves fewer
    than two weeks (a partly loaded edge week would plot a misleading point)."""
    start = first + timedelta(days=(7 - first.weekday()) % 7)
    end = last - timedelta(days=(last.weekday() + 1) % 7)
    return (start, end) if (end - start).days + 1 >= 14 else (first, last)


def weekly_workflow_trend(conn: duckdb.DuckDBPyConnection, top: int = 5) -> list[WeeklyPoint]:
    """Per ISO week (whole weeks, see `full_weeks`), p95 duration and success rate (as in the
    tables: `definitions`) of the `top` workflows by credits: the report's trend charts."""
    first, last = fetch_one(conn, f"SELECT min(run_date), max(run_date) FROM {WORKFLOW_RUNS}")
    if first is None:
        return []
    start, end = full_weeks(first, last)
    rows = conn.execute(
        f"""
        WITH runs AS (
            SELECT *, duration_seconds IS NOT NULL AS completed
            FROM {WORKFLOW_RUNS} WHERE run_date BETWEEN ? AND ?
        ),
        top AS (
            SELECT organization_id, project_id, workflow_name,
                any_value(project_name) || ' / ' || workflow_name AS series,
                sum(total_credits) AS credits
            FROM runs
            GROUP BY organization_id, project_id, workflow_name
            ORDER BY credits DESC, series LIMIT ?
        )
        SELECT date_trunc('week', run_date)::DATE AS week, t.series,
            {completed_percentile_sql(0.95)}, {SUCCESS_RATE_SQL}
        FROM runs w JOIN top t USING (organization_id, project_id, workflow_name)
        GROUP BY week, t.series, t.credits
        ORDER BY week, t.credits DESC
        """,
        [start, end, top],
    ).fetchall()
    return [
        WeeklyPoint(
            week,
            str(series),
            None if p95 is None else float(p95),
            None if rate is None else float(rate),
        )
        for week, series, p95, rate in rows
    ]
