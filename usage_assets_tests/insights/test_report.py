"""The HTML report: self-contained, its four charts, and numbers from the insights tables."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from usage_assets.config import DEFAULT_REFERENCE_DIR
from usage_assets.insights import (
    charts,
    cost,
    daily_usage,
    forecast,
    performance,
    report,
    resource_class_rates,
    right_sizing,
    sanity,
    workflow_runs,
)
from usage_assets.insights.reference_data import Budget, TeamAssignment, load_reference_data
from usage_assets_tests.insights.job_rows import insert, job

FIRST = date(2026, 10, 5)
DAYS = [FIRST + timedelta(days=i) for i in range(14)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 1.0),
        (0.7, 1.0),
        (1, 1.0),
        (1.2, 2.0),
        (2.1, 2.5),
        (3, 5.0),
        (7, 10.0),
        (49_000, 50_000.0),
    ],
)
def test_nice_ceiling(value: float, expected: float) -> None:
    assert charts.nice_ceiling(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0"), (7.5, "7.5"), (950, "950"), (1234, "1.2k"), (2_500_000, "2.5M")],
)
def test_compact(value: float, expected: str) -> None:
    assert charts.compact(value) == expected


@pytest.mark.parametrize(
    ("seconds", "top", "label"),
    [(42, 50.0, "42s"), (90, 240.0, "1.5m"), (3520, 3600.0, "58.7m"), (5000, 7200.0, "1.4h")],
)
def test_duration_axis_and_labels(seconds: float, top: float, label: str) -> None:
    assert charts.nice_duration_ceiling(seconds) == top
    assert charts.duration(seconds) == label


def test_stacked_bars_scale_to_a_nice_axis() -> None:
    svg = charts.stacked_bars(
        [FIRST, FIRST + timedelta(days=1)],
        [("api", [30.0, 0.0]), ("web <b>", [10.0, 50.0])],
        title="t",
        y_label="credits",
    )
    # Largest day 50 -> axis 0..50 over 320 - 36 - 56 = 228 px: 30 -> 136.8 px, 10 -> 45.6, 50 -> 228.
    heights = re.findall(r'height="([0-9.]+)" fill="#[0-9A-F]+"><title>', svg)
    assert heights == ["136.80", "45.60", "228.00"]  # the zero is not drawn
    assert "<title>2026-10-05: api 30</title>" in svg
    assert "web &lt;b&gt;" in svg and "<b>" not in svg  # names are escaped


@pytest.fixture
def warehouse(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    rows = []
    for day in DAYS:
        rows.append(job(day=day, seconds=300, compute_credits=100))
        rows.append(job(day=day, seconds=100, status="failed", compute_credits=20))
        # An xlarge job idling at 10 % CPU and 20 % RAM: a downsize candidate.
        rows.append(
            job(day=day, project_id="p-api", project_name="api", workflow_name="ci",
                job_name="idle-tests", resource_class="xlarge", compute_credits=400,
                median_cpu_utilization_pct=10, max_ram_utilization_pct=20)
        )  # fmt: skip
    insert(conn, rows)
    reference = load_reference_data(DEFAULT_REFERENCE_DIR)
    loaded = (DAYS[0], DAYS[-1])
    daily_usage.refresh(conn, *loaded, "run-1")
    workflow_runs.refresh(conn, *loaded, "run-1")
    performance.refresh(conn, loaded, "run-1")
    right_sizing.refresh(conn, loaded, "run-1", reference.resource_classes, reference.prices[0])
    cost.refresh_costs(conn, "run-1", reference.prices, [TeamAssignment("api", "platform")])
    cost.refresh_chargeback(conn, "run-1")
    forecast.refresh(conn, "run-1", [Budget(date(2026, 10, 1), "acme", None, 1000.0)])
    return conn


def test_collect_reads_the_tables(warehouse: duckdb.DuckDBPyConnection) -> None:
    data = report.collect(warehouse, now=datetime(2026, 10, 19, tzinfo=UTC))
    assert (data.first_day, data.last_day, data.organizations) == (DAYS[0], DAYS[-1], ["acme"])
    # 14 days x 3 job runs; 14 x (100 + 20 + 400) = 7280 credits, x 0.0006 = 4.368 USD.
    assert (data.job_runs, data.total_credits) == (42, 7280.0)
    assert data.cost_by_currency == {"USD": pytest.approx(4.368)}
    assert [name for name, _ in data.daily_series] == ["api", "web"]
    assert [sum(values) for _, values in data.daily_series] == [5600.0, 1680.0]
    assert [(s.job, s.recommendation, s.suggested) for s in data.sizing] == [
        ("idle-tests", "downsize", "large")
    ]
    # 5600 compute credits in 14 days x (1 - 20/40) x 30/14 = 6000 credits a month.
    assert data.saved_credits_per_month == pytest.approx(6000.0)
    assert [t.team for t in data.teams] == ["platform", "unassigned"]
    assert (data.forecasts[0].scope, data.forecasts[0].status) == ("organization", "over_budget")


def test_the_report_file_is_self_contained_with_four_charts(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "reports" / "usage_report.html"
    html = report.render(report.collect(warehouse))
    size = report.write(path, html)
    assert size == path.stat().st_size > 5_000
    text = path.read_text()
    assert text.count("<svg") == 4
    for title in (
        "Credits per day",
        "p95 duration of completed runs",
        "Success rate, per week",
        "projected month-end credits",
    ):
        assert title in text
    assert "idle-tests" in text and "over_budget" in text and "platform" in text
    lowered = text.lower()
    assert "<script" not in lowered and "http://" not in lowered and "https://" not in lowered
    assert sanity.report_self_contained(path).passed


def test_an_empty_warehouse_still_gives_a_valid_report(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    for module in (daily_usage, workflow_runs, right_sizing, forecast):
        module.ensure_table(conn)
    performance.ensure_tables(conn)
    cost.ensure_tables(conn)
    path = tmp_path / "r.html"
    report.write(path, report.render(report.collect(conn)))
    assert "No usage is loaded yet" in path.read_text()
    assert sanity.report_self_contained(path).passed


def test_the_rates_section(warehouse: duckdb.DuckDBPyConnection) -> None:
    # idle-tests' xlarge runs are billed 400 credits per 60 s: 400 a minute, against the file's 40.
    reference = load_reference_data(DEFAULT_REFERENCE_DIR)
    resource_class_rates.refresh(
        warehouse, (DAYS[0], DAYS[-1]), "run-1", reference.resource_classes
    )
    data = report.collect(warehouse)
    xlarge = next(r for r in data.rates if r.resource_class == "xlarge")
    assert (xlarge.runs_used, xlarge.fitted_rate, xlarge.file_rate, xlarge.rate_source) == (
        14,
        400.0,
        40.0,
        "fitted",
    )
    assert data.rates[0] == xlarge  # dearest first: 5,600 compute credits
    html = report.render(data)
    assert "<h2>Credits per minute by resource class</h2>" in html
    assert (
        '<tr><td>docker xlarge</td><td class="num">14</td><td class="num">400</td>'
        '<td class="num">40</td><td class="num"><span class="bad">400</span></td>'
        "<td>fitted</td></tr>"
    ) in html


def test_seat_fees_are_their_own_line_in_the_report(warehouse: duckdb.DuckDBPyConnection) -> None:
    """A 25,000-credit seat fee on one of web's job rows: web's figures stay its job credits, and
    the fee shows as its own series, chargeback line and note, at 0.0006 USD = 15.00 USD."""
    insert(warehouse, [job(day=DAYS[3], compute_credits=0, user_credits=25_000)])
    daily_usage.refresh(warehouse, DAYS[3], DAYS[3], "run-2")
    reference = load_reference_data(DEFAULT_REFERENCE_DIR)
    cost.refresh_costs(warehouse, "run-2", reference.prices, [TeamAssignment("api", "platform")])
    cost.refresh_chargeback(warehouse, "run-2")
    data = report.collect(warehouse, now=datetime(2026, 10, 19, tzinfo=UTC))
    # All credits: 7280 + 25,000; the web series is still 14 x 120 = 1680.
    assert data.total_credits == 32_280.0
    series = dict(data.daily_series)
    assert [name for name, _ in data.daily_series] == ["api", "web", "seat fees"]
    assert (sum(series["web"]), series["seat fees"][3], sum(series["seat fees"])) == (
        1680.0,
        25_000.0,
        25_000.0,
    )
    assert [(p.project, p.credits) for p in data.top_projects] == [("api", 5600.0), ("web", 1680.0)]
    assert [(s.organization, s.credits, s.currency) for s in data.seat_fees] == [
        ("acme", 25_000.0, "USD")
    ]
    assert data.seat_fees[0].cost == pytest.approx(15.0)
    assert [(t.team, t.credits) for t in data.teams] == [
        (cost.SEAT_FEES_LABEL, 25_000.0),
        ("platform", 5600.0),
        ("unassigned", 1680.0),
    ]
    html = report.render(data)
    assert "in no project: acme 25,000 credits (15.00 USD)" in html
    assert "Plan Usage page is the source of truth for billing" in html
