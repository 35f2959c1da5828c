"""Credit anomalies: a project's day far above the median of its recent same-kind days."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from usage_assets.insights import anomalies, daily_usage
from usage_assets.insights.anomalies import Anomaly, find_anomalies
from usage_assets_tests.insights.job_rows import insert, job

FIRST = date(2026, 10, 1)  # a Thursday
THURSDAY = date(2026, 10, 29)
SATURDAY = date(2026, 10, 31)


def pattern(weekday: float, weekend: float, **overrides: float) -> dict[date, float]:
    """Oct 1 .. 31 at `weekday` / `weekend` credits a day, with some days overridden."""
    out = {}
    for i in range(31):
        day = FIRST + timedelta(days=i)
        out[day] = weekday if day.weekday() < 5 else weekend
    for key, value in overrides.items():
        out[date.fromisoformat(key.removeprefix("d").replace("_", "-"))] = value
    return out


SERIES = {
    # Norm 100 on weekdays; 300 on Thursday Oct 29 is 3x and 200 above: an anomaly.
    # An earlier spike (1000 on Oct 15) does not lift the median.
    ("acme", "web"): pattern(100, 20, d2026_10_15=1000, d2026_10_29=300),
    # 240 is 2.4x: not far enough.
    ("acme", "api"): pattern(100, 20, d2026_10_29=240),
    # 4 -> 12 is 3x but only 8 credits more: not news.
    ("acme", "tiny"): pattern(4, 0, d2026_10_29=12),
    # Nothing before, then 150: new spend above 100 credits.
    ("acme", "new"): {THURSDAY: 150.0},
    # Saturday against weekends (norm 20): 400 is an anomaly, though weekdays run at 300.
    ("acme", "batch"): pattern(300, 20, d2026_10_31=400),
}


def test_days_far_above_their_same_kind_norm() -> None:
    found = find_anomalies(SERIES, [THURSDAY, SATURDAY], FIRST)
    assert found == [
        Anomaly(THURSDAY, "acme", "new", 150.0, 0.0),
        Anomaly(THURSDAY, "acme", "web", 300.0, 100.0),
        Anomaly(SATURDAY, "acme", "batch", 400.0, 20.0),
    ]
    assert found[1].ratio == 3.0 and found[0].ratio is None
    assert found[1].describe() == "web (acme) on 2026-10-29: 300 credits vs a norm of 100 (3.0x)"
    assert "new spend" in found[0].describe()


def test_no_verdict_without_four_days_of_history() -> None:
    # Loaded from Monday Oct 26: Thursday has 3 weekdays of history.
    assert find_anomalies(SERIES, [THURSDAY], date(2026, 10, 26)) == []


def test_detect_reads_daily_usage(conn: duckdb.DuckDBPyConnection) -> None:
    days = [FIRST + timedelta(days=i) for i in range(29)]
    insert(
        conn,
        [
            job(day=day, compute_credits=500 if day == THURSDAY else 100)
            for day in days
            if day.weekday() < 5
        ],
    )
    daily_usage.refresh(conn, FIRST, THURSDAY, "run-0")
    assert anomalies.detect(conn, THURSDAY, THURSDAY) == [
        Anomaly(THURSDAY, "acme", "web", 500.0, 100.0)
    ]
    # Weekends had no usage at all: zero, not an anomaly.
    assert anomalies.detect(conn, FIRST, THURSDAY - timedelta(days=1)) == []


def test_a_seat_fee_on_a_project_day_does_not_fire(conn: duckdb.DuckDBPyConnection) -> None:
    """Weekdays at 100 credits; on Thursday the export puts a 25,000-credit seat fee on one of
    web's job rows. Judged on job credits, Thursday is 100 against a norm of 100: no anomaly."""
    days = [FIRST + timedelta(days=i) for i in range(29)]
    rows = [job(day=day, compute_credits=100) for day in days if day.weekday() < 5]
    rows.append(job(day=THURSDAY, compute_credits=0, user_credits=25_000))
    insert(conn, rows)
    daily_usage.refresh(conn, FIRST, THURSDAY, "run-0")
    assert anomalies.detect(conn, THURSDAY, THURSDAY) == []
    # A real spike on the same day still fires, at its job credits (100 + 300), not 25,400.
    insert(conn, [job(day=THURSDAY, compute_credits=300)])
    daily_usage.refresh(conn, THURSDAY, THURSDAY, "run-1")
    assert anomalies.detect(conn, THURSDAY, THURSDAY) == [
        Anomaly(THURSDAY, "acme", "web", 400.0, 100.0)
    ]
