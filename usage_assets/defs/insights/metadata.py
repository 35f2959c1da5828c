"""What the insights assets show in the UI: markdown tables of their top rows, check details.

Reads only; every query here is over tables the assets just wrote.
"""

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import duckdb

from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.insights import (
    anomalies,
    cost,
    definitions,
    forecast,
    performance,
    resource_class_rates,
    right_sizing,
)
from usage_assets.insights.common import table

TOP_ROWS = 10


def table_schema(
    columns: Mapping[str, str], descriptions: Mapping[str, str] | None = None
) -> dg.TableSchema:
    """Dagster's column schema; `descriptions` (column -> text) show beside the columns in the UI."""
    described = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, sql, description=described.get(name))
            for name, sql in columns.items()
        ]
    )


def anomaly_result(found: Sequence[anomalies.Anomaly]) -> RuleResult:
    names = sorted({a.project_name for a in found})
    return RuleResult(
        passed=not found,
        description=(
            "no project's credits far above its trailing norm"
            if not found
            else f"credits far above the trailing norm for {', '.join(names)}: "
            + "; ".join(a.describe() for a in found[:5])
            + ("; ..." if len(found) > 5 else "")
        ),
        metadata={
            "anomalies": len(found),
            "projects": ", ".join(names) or "none",
            "details": dg.MetadataValue.md(
                markdown_table(
                    ["day", "project", "organization", "credits", "norm"],
                    [
                        [
                            str(a.day),
                            a.project_name,
                            a.organization_name,
                            f"{a.credits:,.0f}",
                            f"{a.norm:,.0f}",
                        ]
                        for a in found[:TOP_ROWS]
                    ],
                )
            ),
        },
    )


def performance_metadata(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    refreshed: performance.Refreshed,
    loaded: tuple[date, date] | None,
) -> dict[str, Any]:
    """A performance table's metadata: size, loaded days, which periods the refresh recomputed
    (and whether it rebuilt them all, and why), and its top rows by credits."""
    per_workflow = name == performance.WORKFLOW_NAME
    columns = performance.WORKFLOW_COLUMNS if per_workflow else performance.JOB_COLUMNS
    label = "workflow_name" if per_workflow else "workflow_name || ' / ' || job_name"
    top = conn.execute(
        f"SELECT project_name, {label}, runs, success_rate, p95_duration_seconds, throughput,"
        f" insights_credits, total_credits FROM {table(name)}"
        " WHERE period = ? AND branch_scope = 'all' ORDER BY total_credits DESC LIMIT ?",
        [performance.ROLLING_LABEL, TOP_ROWS],
    ).fetchall()
    return {
        "dagster/row_count": refreshed.rows,
        "dagster/column_schema": table_schema(columns, definitions.column_descriptions()),
        "loaded_days": f"{loaded[0]} .. {loaded[1]}" if loaded else "none",
        "periods_recomputed": len(refreshed.recomputed),
        "periods_kept": len(refreshed.kept),
        "periods_dropped": len(refreshed.dropped),
        "full_rebuild": refreshed.full_rebuild,
        "full_rebuild_reason": refreshed.reason or "none",
        "recomputed": ", ".join(refreshed.recomputed) or "none",
        "days_read": ", ".join(f"{a} .. {b}" for a, b in refreshed.days_read) or "none",
        "top_by_credits_last_30_days": dg.MetadataValue.md(
            markdown_table(
                [
                    "project",
                    "name",
                    "runs",
                    "success",
                    "p95 s",
                    "runs/day",
                    "compute + DLC credits",
                    "total credits",
                ],
                [
                    [
                        p,
                        n,
                        f"{r:,}",
                        _pct(sr),
                        _number(p95),
                        f"{t:.1f}",
                        f"{c:,.0f}",
                        f"{f:,.0f}",
                    ]
                    for p, n, r, sr, p95, t, c, f in top
                ],
            )
        ),
    }


def sizing_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        f"SELECT project_name, job_name, resource_class, recommendation,"
        f" coalesce(suggested_class, ''), cpu_p95_pct, ram_p95_pct, est_credits_saved_per_month"
        f" FROM {right_sizing.RIGHT_SIZING}"
        f" WHERE recommendation IN ('{right_sizing.DOWNSIZE}', '{right_sizing.AT_CEILING}')"
        f" ORDER BY est_credits_saved_per_month DESC, runs DESC LIMIT ?",
        [TOP_ROWS],
    ).fetchall()
    return markdown_table(
        [
            "project",
            "job",
            "class",
            "finding",
            "suggested",
            "CPU p95 %",
            "RAM p95 %",
            "credits saved / month",
        ],
        [
            [p, j, c, r, s, _number(cpu), _number(ram), f"{saved:,.0f}"]
            for p, j, c, r, s, cpu, ram, saved in rows
        ],
    )


def rates_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    """resource_class_rates, every class (a few dozen at most), dearest first."""
    return markdown_table(
        ["executor", "class", "runs", "runs used", "fitted", "file", "used", "source", "credits"],
        [
            [
                r.executor or "(blank)",
                r.resource_class,
                f"{r.runs:,}",
                f"{r.runs_used:,}",
                _rate(r.fitted_rate),
                _rate(r.file_rate) if r.in_file else "not in file",
                _rate(r.rate_used),
                r.rate_source,
                f"{r.compute_credits:,.0f}",
            ]
            for r in resource_class_rates.read(conn).values()
        ],
    )


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def cost_markdown(conn: duckdb.DuckDBPyConnection, loaded: tuple[date, date] | None) -> str:
    """The top projects by job credits, then each organization's seat fees as its own line."""
    if loaded is None:
        return markdown_table(["project"], [])
    first = max(loaded[0], loaded[1] - timedelta(days=29))
    return markdown_table(
        ["project (last 30 days)", "team", "credits", "cost"],
        [
            *(
                [p.project, p.team, f"{p.credits:,.0f}", _money(p.cost, p.currency)]
                for p in cost.top_projects(conn, first, loaded[1], TOP_ROWS)
            ),
            *(
                [
                    f"seat fees ({s.organization})",
                    "",
                    f"{s.credits:,.0f}",
                    _money(s.cost, s.currency),
                ]
                for s in cost.seat_fees(conn, first, loaded[1])
            ),
        ],
    )


def chargeback_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        f"SELECT month, coalesce(team, ?) AS who, sum(credits) AS credits, sum(cost),"
        f" any_value(currency) FROM {cost.TEAM_CHARGEBACK}"
        f" WHERE month = (SELECT max(month) FROM {cost.TEAM_CHARGEBACK})"
        " GROUP BY month, who ORDER BY credits DESC LIMIT ?",
        [cost.SEAT_FEES_LABEL, TOP_ROWS],
    ).fetchall()
    return markdown_table(
        ["month", "team", "credits", "cost"],
        [[f"{m:%Y-%m}", t, f"{c:,.0f}", _money(v, cur)] for m, t, c, v, cur in rows],
    )


def forecast_markdown(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        f"SELECT scope, organization_name, coalesce(project_name, ''), mtd_credits,"
        f" projected_month_credits, budget_credits, budget_status FROM {forecast.CREDIT_FORECAST}"
        " ORDER BY scope = 'project', projected_month_credits DESC LIMIT ?",
        [TOP_ROWS + 1],
    ).fetchall()
    return markdown_table(
        ["scope", "organization", "project", "month to date", "projected", "budget", "status"],
        [
            [s, o, p, f"{m:,.0f}", f"{pr:,.0f}", f"{b:,.0f}" if b is not None else "", st]
            for s, o, p, m, pr, b, st in rows
        ],
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table (what the UI renders for MetadataValue.md)."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    if not rows:
        lines.append("| " + " | ".join(["(none)"] + [""] * (len(headers) - 1)) + " |")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _money(value: float | None, currency: str | None) -> str:
    return f"{value:,.2f} {currency}" if value is not None else "no price"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"
