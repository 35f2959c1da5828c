"""The self-contained HTML usage report: one file, inline CSS and SVG, no script, no external URL.

`collect` reads everything the report shows from the insights tables (so the report and the tables
can never disagree), `render` turns it into HTML (pure: data in, text out), and `write` replaces the
file atomically, so a browser never opens a half-written report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path

import duckdb

from usage_assets.circleci.vocabulary import JOB_CREDITS_SQL, SEAT_CREDITS_SQL
from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.insights import (
    anomalies,
    charts,
    cost,
    forecast,
    performance,
    resource_class_rates,
    right_sizing,
)
from usage_assets.insights.common import table
from usage_assets.insights.daily_usage import DAILY_USAGE

TOP_PROJECTS_IN_CHART = 8
SEAT_FEES_SERIES = "seat fees"
TABLE_ROWS = 15
RECENT_DAYS = 30


@dataclass(frozen=True)
class WorkflowRow:
    project: str
    workflow: str
    runs: int
    success_rate: float | None
    p50: float | None
    p95: float | None
    throughput: float
    credits: float
    failed_credits: float
    p95_trend: float | None
    success_rate_trend: float | None


@dataclass(frozen=True)
class SizingRow:
    project: str
    job: str
    resource_class: str
    recommendation: str
    ceiling: str | None
    suggested: str | None
    runs: int
    cpu_p95: float | None
    ram_p95: float | None
    saved_credits: float
    saved_cost: float | None
    currency: str | None


@dataclass(frozen=True)
class ForecastRow:
    scope: str
    organization: str
    project: str | None
    mtd: float
    projected: float
    budget: float | None
    status: str


@dataclass(frozen=True)
class TeamRow:
    team: str
    credits: float
    cost: float | None
    currency: str | None


@dataclass
class ReportData:
    generated_at: datetime
    first_day: date | None = None
    last_day: date | None = None
    organizations: list[str] = field(default_factory=list)
    job_runs: int = 0
    total_credits: float = 0.0
    cost_by_currency: dict[str, float] = field(default_factory=dict)
    days: list[date] = field(default_factory=list)
    daily_series: list[tuple[str, list[float]]] = field(default_factory=list)
    weekly: list[performance.WeeklyPoint] = field(default_factory=list)
    workflows: list[WorkflowRow] = field(default_factory=list)
    top_projects: list[cost.ProjectCost] = field(default_factory=list)
    seat_fees: list[cost.SeatFees] = field(default_factory=list)
    sizing: list[SizingRow] = field(default_factory=list)
    saved_credits_per_month: float = 0.0
    unknown_classes: list[str] = field(default_factory=list)
    forecasts: list[ForecastRow] = field(default_factory=list)
    forecast_month: date | None = None
    teams: list[TeamRow] = field(default_factory=list)
    anomalies: list[anomalies.Anomaly] = field(default_factory=list)
    rates: list[resource_class_rates.ClassRate] = field(default_factory=list)


def collect(conn: duckdb.DuckDBPyConnection, now: datetime | None = None) -> ReportData:
    data = ReportData(generated_at=now or datetime.now(UTC))
    first, last, runs, credits = fetch_one(
        conn,
        f"SELECT min(usage_date), max(usage_date), coalesce(sum(job_runs), 0),"
        f" coalesce(sum(total_credits), 0) FROM {DAILY_USAGE}",
    )
    if first is None:
        return data
    data.first_day, data.last_day = first, last
    data.job_runs, data.total_credits = int(runs), float(credits)
    data.organizations = [
        str(name)
        for (name,) in conn.execute(
            f"SELECT DISTINCT organization_name FROM {DAILY_USAGE} ORDER BY 1"
        ).fetchall()
    ]
    data.cost_by_currency = {
        str(currency): float(total)
        for currency, total in conn.execute(
            f"SELECT currency, sum(cost) FROM {cost.CREDIT_COSTS} WHERE currency IS NOT NULL"
            " GROUP BY currency ORDER BY currency"
        ).fetchall()
    }
    _collect_daily(conn, data, first, last)
    data.weekly = performance.weekly_workflow_trend(conn)
    recent = max(first, last - timedelta(days=RECENT_DAYS - 1))
    data.top_projects = cost.top_projects(conn, recent, last, TABLE_ROWS)
    data.seat_fees = cost.seat_fees(conn, recent, last)
    data.workflows = [
        WorkflowRow(str(p), str(w), int(r), sr, p50, p95, float(t), float(c), float(fc), pt, st)
        for p, w, r, sr, p50, p95, t, c, fc, pt, st in conn.execute(
            f"""SELECT project_name, workflow_name, runs, success_rate, p50_duration_seconds,
                p95_duration_seconds, throughput, insights_credits, failed_run_credits,
                p95_duration_trend, success_rate_trend
            FROM {table(performance.WORKFLOW_NAME)}
            WHERE period = ? AND branch_scope = 'all'
            ORDER BY total_credits DESC LIMIT ?""",
            [performance.ROLLING_LABEL, TABLE_ROWS],
        ).fetchall()
    ]
    data.sizing = [
        SizingRow(str(p), str(j), str(rc), str(rec), ce, sug, int(n), cpu, ram, float(s), sc, cur)
        for p, j, rc, rec, ce, sug, n, cpu, ram, s, sc, cur in conn.execute(
            f"""SELECT project_name, job_name, resource_class, recommendation, ceiling,
                suggested_class, runs, cpu_p95_pct, ram_p95_pct, est_credits_saved_per_month,
                est_cost_saved_per_month, currency
            FROM {right_sizing.RIGHT_SIZING}
            WHERE recommendation IN ('{right_sizing.DOWNSIZE}', '{right_sizing.AT_CEILING}')
            ORDER BY recommendation = '{right_sizing.DOWNSIZE}' DESC,
                est_credits_saved_per_month DESC, runs DESC
            LIMIT ?""",
            [2 * TABLE_ROWS],
        ).fetchall()
    ]
    (saved,) = fetch_one(
        conn,
        f"SELECT coalesce(sum(est_credits_saved_per_month), 0) FROM {right_sizing.RIGHT_SIZING}",
    )
    data.saved_credits_per_month = float(saved)
    data.unknown_classes = [
        f"{executor} {rc}"
        for executor, rc in conn.execute(
            f"SELECT DISTINCT executor, resource_class FROM {right_sizing.RIGHT_SIZING}"
            f" WHERE recommendation = '{right_sizing.UNKNOWN_CLASS}' ORDER BY 1, 2"
        ).fetchall()
    ]
    forecast_rows = conn.execute(
        f"""SELECT month, scope, organization_name, project_name, mtd_credits,
            projected_month_credits, budget_credits, budget_status
        FROM {forecast.CREDIT_FORECAST}
        ORDER BY organization_name, scope = 'project', projected_month_credits DESC"""
    ).fetchall()
    data.forecast_month = forecast_rows[0][0] if forecast_rows else None
    data.forecasts = [
        ForecastRow(str(s), str(o), p, float(m), float(pr), b, str(st))
        for _, s, o, p, m, pr, b, st in forecast_rows
    ][: TABLE_ROWS + len(data.organizations)]
    data.teams = [
        TeamRow(str(t), float(c), None if m is None else float(m), cur)
        for t, c, m, cur in conn.execute(
            f"""SELECT coalesce(team, ?) AS who, sum(credits) AS credits, sum(cost),
                any_value(currency)
            FROM {cost.TEAM_CHARGEBACK} WHERE month = ?
            GROUP BY who ORDER BY credits DESC""",
            [cost.SEAT_FEES_LABEL, last.replace(day=1)],
        ).fetchall()
    ]
    data.anomalies = anomalies.detect(conn, recent, last)
    data.rates = list(resource_class_rates.read(conn).values())
    return data


def _collect_daily(
    conn: duckdb.DuckDBPyConnection, data: ReportData, first: date, last: date
) -> None:
    """Job credits per day of the top projects (the rest as "other"), and the seat fees as their
    own series: they are no project's spend, but the day's stack still adds up to all credits."""
    data.days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    top = [
        str(name)
        for (name,) in conn.execute(
            f"SELECT project_name FROM {DAILY_USAGE} GROUP BY project_name"
            f" ORDER BY sum({JOB_CREDITS_SQL}) DESC, project_name LIMIT ?",
            [TOP_PROJECTS_IN_CHART],
        ).fetchall()
    ]
    index = {day: i for i, day in enumerate(data.days)}
    names = [*top, "other", SEAT_FEES_SERIES]
    by_name: dict[str, list[float]] = {name: [0.0] * len(data.days) for name in names}
    for project, day, credits, seats in conn.execute(
        f"SELECT project_name, usage_date, sum({JOB_CREDITS_SQL}), sum({SEAT_CREDITS_SQL})"
        f" FROM {DAILY_USAGE} GROUP BY project_name, usage_date"
    ).fetchall():
        name = project if project in top else "other"
        by_name[name][index[day]] += float(credits)
        by_name[SEAT_FEES_SERIES][index[day]] += float(seats)
    data.daily_series = [(name, values) for name, values in by_name.items() if any(values)]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

# What an empty cell shows (an en dash, written as an entity to keep the source ASCII).
_NONE = "&ndash;"

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
  margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 36px; }
.muted { color: #57606a; } .kpis { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
.kpi { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.kpi b { display: block; font-size: 20px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart { display: block; margin: 8px 0; } .chart-title { font-weight: 600; font-size: 14px; }
.tick, .legend { font-size: 11px; fill: #57606a; } .axis-label { font-size: 11px; fill: #57606a; }
.grid { stroke: #eaeef2; } .bad { color: #b35900; font-weight: 600; } .good { color: #1a7f37; }
"""


def _num(value: float | None, digits: int = 0) -> str:
    return _NONE if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return _NONE if value is None else f"{value * 100:.1f}%"


def _trend(value: float | None) -> str:
    return _NONE if value is None else f"{value * 100:+.0f}%"


def _money(value: float | None, currency: str | None) -> str:
    return _NONE if value is None or currency is None else f"{value:,.2f} {escape(currency)}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    if not rows:
        return '<p class="muted">Nothing to show.</p>'
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _weekly_series(
    points: Sequence[performance.WeeklyPoint],
) -> tuple[list[date], list[str], dict[tuple[date, str], performance.WeeklyPoint]]:
    weeks = sorted({p.week for p in points})
    names = list(dict.fromkeys(p.series for p in points))
    return weeks, names, {(p.week, p.series): p for p in points}


_TITLE = "CircleCI usage report"


def render(data: ReportData) -> str:
    """The whole report as one HTML document: the sections below in reading order, one per line
    group, so each can be read and changed alone."""
    if data.first_day is None or data.last_day is None:
        return "\n".join([*_document_head(), *_no_usage()])
    sections = (
        _document_head(),
        _summary(data, data.first_day, data.last_day),
        _daily_credits(data),
        _top_projects(data),
        _workflow_performance(data),
        _right_sizing(data),
        _resource_class_rates(data),
        _forecast(data),
        _chargeback(data),
        _anomalies(data),
        _footer(),
    )
    return "\n".join(line for section in sections for line in section)


def _document_head() -> list[str]:
    """Doctype, head with the inline style, and the title: shared by the empty report."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_TITLE}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_TITLE}</h1>",
    ]


def _no_usage() -> list[str]:
    """The body when nothing is loaded: still the four (empty) charts, so the file has the shape
    the sanity check and a reader expect."""
    return [
        '<p class="muted">No usage is loaded yet.</p>',
        *_empty_charts(),
        "</body></html>",
    ]


def _summary(data: ReportData, first: date, last: date) -> list[str]:
    """What the report covers (orgs, dates, when and from where) and the headline figures."""
    orgs = ", ".join(escape(o) for o in data.organizations)
    costs = " + ".join(_money(v, c) for c, v in data.cost_by_currency.items()) or "no price set"
    return [
        f'<p class="muted">{orgs} · {first} to {last} '
        f"({len(data.days)} days) · generated {data.generated_at:%Y-%m-%d %H:%M} UTC "
        "from the <code>circleci_insights</code> tables</p>",
        '<div class="kpis">'
        f'<div class="kpi">job runs<b>{data.job_runs:,}</b></div>'
        f'<div class="kpi">credits<b>{data.total_credits:,.0f}</b></div>'
        f'<div class="kpi">estimated cost<b>{costs}</b></div>'
        f'<div class="kpi">right-sizing, credits/month<b>{data.saved_credits_per_month:,.0f}</b></div>'
        "</div>",
    ]


def _daily_credits(data: ReportData) -> list[str]:
    """Credits per day, the top projects stacked: where spend comes from, and when it moves."""
    return [
        "<h2>Daily credits by project</h2>",
        charts.stacked_bars(
            data.days,
            data.daily_series,
            title=f"Credits per day, top {TOP_PROJECTS_IN_CHART} projects stacked",
            y_label="credits",
        ),
    ]


def _top_projects(data: ReportData) -> list[str]:
    """The most expensive projects of the recent days, with their team and estimated cost, then
    the seat fees, which are the organization's and in no project's figures."""
    seats = "; ".join(
        f"{escape(s.organization)} {_num(s.credits)} credits ({_money(s.cost, s.currency)})"
        for s in data.seat_fees
    )
    return [
        f"<h2>Top projects, last {RECENT_DAYS} days</h2>",
        _table(
            ["project", "organization", "team", "credits", "cost"],
            [
                [
                    escape(p.project),
                    escape(p.organization),
                    escape(p.team),
                    _num(p.credits),
                    _money(p.cost, p.currency),
                ]
                for p in data.top_projects
            ],
            {3, 4},
        ),
        '<p class="muted">Job credits: total credits minus seat fees (USER_CREDITS). Seat fees, '
        f"an organization-level line, in no project: {seats or 'none'}.</p>",
    ]


def _workflow_performance(data: ReportData) -> list[str]:
    """Workflow speed and reliability: the two weekly trend charts, then the per-workflow table."""
    return [
        "<h2>Workflow performance</h2>",
        _p95_duration_trend(data.weekly),
        _success_rate_trend(data.weekly),
        _workflow_table(data.workflows),
        '<p class="muted">Last 30 days, all branches, as in CircleCI Insights: success = '
        "successful / (runs - canceled); p50/p95 over completed runs of any outcome; credits = "
        "compute + DLC (Insights' Total Credits; all credit types in the cost tables); p95 trend "
        "against the previous 30 days' worst daily p95; throughput = runs per day.</p>",
    ]


def _p95_duration_trend(points: Sequence[performance.WeeklyPoint]) -> str:
    """p95 duration per week and workflow, on a time axis rounded to a readable ceiling."""
    weeks, names, by_key = _weekly_series(points)
    return charts.line_chart(
        weeks,
        [(n, [_get(by_key, w, n, "p95") for w in weeks]) for n in names],
        title="p95 duration of completed runs, per week (top workflows by credits)",
        y_label="p95 duration",
        fmt=charts.duration,
        top=charts.nice_duration_ceiling(
            max((p.p95_duration_seconds or 0.0 for p in points), default=0.0)
        ),
    )


def _success_rate_trend(points: Sequence[performance.WeeklyPoint]) -> str:
    """Success rate per week and workflow, always on a 0-100 % axis so weeks compare at a glance."""
    weeks, names, by_key = _weekly_series(points)
    return charts.line_chart(
        weeks,
        [(n, [_get(by_key, w, n, "rate") for w in weeks]) for n in names],
        title="Success rate, per week: successful / (runs - canceled)",
        y_label="success rate",
        fmt=charts.percent,
        top=1.0,
    )


def _workflow_table(workflows: Sequence[WorkflowRow]) -> str:
    """The costliest workflows with their run counts, durations, credits and trends."""
    return _table(
        [
            "project",
            "workflow",
            "runs",
            "success",
            "p50",
            "p95",
            "runs/day",
            "compute + DLC credits",
            "failed credits",
            "p95 trend",
            "success trend",
        ],
        [
            [
                escape(w.project),
                escape(w.workflow),
                _num(w.runs),
                _pct(w.success_rate),
                charts.duration(w.p50) if w.p50 is not None else _NONE,
                charts.duration(w.p95) if w.p95 is not None else _NONE,
                _num(w.throughput, 1),
                _num(w.credits),
                _num(w.failed_credits),
                _trend(w.p95_trend),
                _trend(w.success_rate_trend),
            ]
            for w in workflows
        ],
        set(range(2, 11)),
    )


def _right_sizing(data: ReportData) -> list[str]:
    """Jobs to downsize (with the saving) and jobs at their ceiling, then the rule behind them and
    any resource class the reference file does not know (its jobs could not be judged)."""
    parts = [
        "<h2>Right-sizing</h2>",
        _table(
            [
                "project",
                "job",
                "class",
                "finding",
                "suggested",
                "runs",
                "CPU p95",
                "RAM p95",
                "credits saved/month",
                "cost saved/month",
            ],
            [
                [
                    escape(s.project),
                    escape(s.job),
                    escape(s.resource_class),
                    "downsize"
                    if s.recommendation == right_sizing.DOWNSIZE
                    else f'<span class="bad">at ceiling ({escape(s.ceiling or "")})</span>',
                    escape(s.suggested) if s.suggested else _NONE,
                    _num(s.runs),
                    _num(s.cpu_p95),
                    _num(s.ram_p95),
                    _num(s.saved_credits) if s.recommendation == right_sizing.DOWNSIZE else _NONE,
                    _money(s.saved_cost, s.currency)
                    if s.recommendation == right_sizing.DOWNSIZE
                    else _NONE,
                ]
                for s in data.sizing
            ],
            {5, 6, 7, 8, 9},
        ),
        '<p class="muted">Last 30 days. CPU p95: 95th percentile of each run\'s median CPU %; '
        "RAM p95: of each run's peak RAM %. Downsize when both stay at or under 80 % on the next "
        "smaller class; at ceiling from 95 %.</p>",
    ]
    if data.unknown_classes:
        parts.append(
            '<p class="bad">Resource classes missing from resource_classes.csv: '
            + escape(", ".join(data.unknown_classes))
            + "</p>"
        )
    return parts


def _resource_class_rates(data: ReportData) -> list[str]:
    """The credits per minute right-sizing priced each class at: fitted from the export, or the
    reference file's; a fitted rate the file contradicts is marked."""

    def rate(value: float | None) -> str:
        return _NONE if value is None else f"{value:g}"

    rows = [
        [
            escape(f"{r.executor or '(blank executor)'} {r.resource_class}"),
            _num(r.runs_used),
            rate(r.fitted_rate),
            rate(r.file_rate) if r.in_file else '<span class="bad">not in file</span>',
            f'<span class="bad">{rate(r.rate_used)}</span>'
            if resource_class_rates.disagrees(r)
            else rate(r.rate_used),
            escape(r.rate_source),
        ]
        for r in data.rates[: 2 * TABLE_ROWS]
    ]
    return [
        "<h2>Credits per minute by resource class</h2>",
        _table(["class", "runs used", "fitted", "file", "used", "source"], rows, {1, 2, 3, 4}),
        f'<p class="muted">Fitted from the last {resource_class_rates.FIT_WINDOW_DAYS} loaded '
        "days: the whole-number rate most runs' billed compute credits agree with, rounding "
        "and parallelism allowed for; the file's rate where fewer than "
        f"{resource_class_rates.MIN_RUNS_TO_FIT} runs agree. Classes by compute credits.</p>",
    ]


def _month(data: ReportData) -> str:
    """The forecast month as a heading text; the forecast and chargeback sections share it."""
    return f"{data.forecast_month:%B %Y}" if data.forecast_month else "this month"


def _forecast(data: ReportData) -> list[str]:
    """Month to date against projected month-end credits and budgets, as bars and as a table."""
    month = _month(data)
    return [
        f"<h2>Forecast for {month}</h2>",
        charts.forecast_bars(
            [
                charts.ForecastBar(
                    f.organization if f.scope == "organization" else f"{f.project}",
                    f.mtd,
                    f.projected,
                    f.budget,
                )
                for f in data.forecasts
            ],
            title=f"Month to date and projected month-end credits, {month}",
        ),
        _table(
            ["scope", "organization", "project", "month to date", "projected", "budget", "status"],
            [
                [
                    f.scope,
                    escape(f.organization),
                    escape(f.project) if f.project else _NONE,
                    _num(f.mtd),
                    _num(f.projected),
                    _num(f.budget),
                    f'<span class="bad">{f.status}</span>'
                    if f.status == forecast.OVER_BUDGET
                    else f.status,
                ]
                for f in data.forecasts
            ],
            {3, 4, 5},
        ),
        '<p class="muted">In job credits, as are the budgets: seat fees are deducted once per '
        "billing cycle, so they are not projected (the month's so far: mtd_seat_credits).</p>",
    ]


def _chargeback(data: ReportData) -> list[str]:
    """Credits and cost per team in the month of the last loaded day: who to charge for what."""
    return [
        f"<h2>Chargeback for {_month(data)}</h2>",
        _table(
            ["team", "credits", "cost"],
            [[escape(t.team), _num(t.credits), _money(t.cost, t.currency)] for t in data.teams],
            {1, 2},
        ),
    ]


def _anomalies(data: ReportData) -> list[str]:
    """Project-days whose credits stand out from their trailing norm ("new" when there was none)."""
    return [
        f"<h2>Credit anomalies, last {RECENT_DAYS} days</h2>",
        _table(
            ["day", "project", "organization", "credits", "trailing norm", "ratio"],
            [
                [
                    str(a.day),
                    escape(a.project_name),
                    escape(a.organization_name),
                    _num(a.credits),
                    _num(a.norm),
                    f"{a.ratio:.1f}x" if a.ratio is not None else "new",
                ]
                for a in data.anomalies
            ],
            {3, 4, 5},
        ),
    ]


def _footer() -> list[str]:
    """Where the definitions are and what the costs are based on; closes the document."""
    return [
        '<p class="muted">Definitions: see the README\'s Insights section. Costs are estimates '
        "from the usage export: credits times the price in price_per_credit.csv. CircleCI's Plan "
        "Usage page is the source of truth for billing.</p></body></html>"
    ]


def _get(
    by_key: dict[tuple[date, str], performance.WeeklyPoint], week: date, name: str, what: str
) -> float | None:
    point = by_key.get((week, name))
    if point is None:
        return None
    return point.p95_duration_seconds if what == "p95" else point.success_rate


def _empty_charts() -> list[str]:
    return [
        charts.stacked_bars([], [], title="Credits per day", y_label="credits"),
        charts.line_chart([], [], title="p95 duration", y_label="p95 duration"),
        charts.line_chart([], [], title="Success rate", y_label="success rate", top=1.0),
        charts.forecast_bars([], title="Forecast"),
    ]


def write(path: Path, html: str) -> int:
    """Replace the report atomically; returns its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = html.encode("utf-8")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return len(data)
