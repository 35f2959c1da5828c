"""Credit anomalies: a project's day far above its own trailing norm.

A project's day is judged on its **job credits** (total minus seat credits,
`vocabulary.JOB_CREDITS_SQL`): a 25,000-credit seat fee that the export puts on one of its job
rows is the organization's once-a-cycle deduction, not the project's spend, and must not fire.

A project's **norm** for a day is the median of its daily job credits over the 28 loaded days
before it, taking only days of the same kind (weekdays for a weekday, weekend days for a weekend
day), because most teams push far less on weekends. Days without usage count as zero. The day is an
anomaly when its credits exceed both 2.5 times the norm and the norm plus 100 credits (so a quiet
project going from 4 to 12 credits is not news), once at least 4 same-kind days of history exist.

The median rather than the mean, so that one earlier spike does not raise the bar for the next.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from usage_assets.circleci.vocabulary import JOB_CREDITS_SQL
from usage_assets.insights.daily_usage import DAILY_USAGE

HISTORY_DAYS = 28
MIN_HISTORY_DAYS = 4
RATIO = 2.5
MIN_EXCESS_CREDITS = 100.0


@dataclass(frozen=True)
class Anomaly:
    day: date
    organization_name: str
    project_name: str
    credits: float
    norm: float

    @property
    def ratio(self) -> float | None:
        return self.credits / self.norm if self.norm else None

    def describe(self) -> str:
        times = f"{self.ratio:.1f}x" if self.ratio is not None else "new spend"
        return (
            f"{self.project_name} ({self.organization_name}) on {self.day}: "
            f"{self.credits:,.0f} credits vs a norm of {self.norm:,.0f} ({times})"
        )


def _same_kind(a: date, b: date) -> bool:
    return (a.weekday() >= 5) == (b.weekday() >= 5)


def find_anomalies(
    series: Mapping[tuple[str, str], Mapping[date, float]],
    days: Iterable[date],
    first_loaded: date,
) -> list[Anomaly]:
    """Anomalies among `days` in daily credit series keyed by (organization, project)."""
    found: list[Anomaly] = []
    for day in sorted(days):
        history_start = max(first_loaded, day - timedelta(days=HISTORY_DAYS))
        history = [
            history_start + timedelta(days=i)
            for i in range((day - history_start).days)
            if _same_kind(history_start + timedelta(days=i), day)
        ]
        if len(history) < MIN_HISTORY_DAYS:
            continue
        for (organization, project), credits_by_day in sorted(series.items()):
            credits = credits_by_day.get(day, 0.0)
            norm = statistics.median(credits_by_day.get(d, 0.0) for d in history)
            if credits > RATIO * norm and credits > norm + MIN_EXCESS_CREDITS:
                found.append(Anomaly(day, organization, project, credits, norm))
    return found


def detect(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> list[Anomaly]:
    """Anomalies on the days [first, last], from `daily_usage`'s job credits."""
    (first_loaded,) = conn.execute(f"SELECT min(usage_date) FROM {DAILY_USAGE}").fetchone() or (
        None,
    )
    if first_loaded is None:
        return []
    series: dict[tuple[str, str], dict[date, float]] = {}
    for org, project, day, credits in conn.execute(
        f"SELECT organization_name, project_name, usage_date, sum({JOB_CREDITS_SQL})"
        f" FROM {DAILY_USAGE} WHERE usage_date BETWEEN ? AND ?"
        " GROUP BY organization_name, project_name, usage_date",
        [first - timedelta(days=HISTORY_DAYS), last],
    ).fetchall():
        series.setdefault((str(org), str(project)), {})[day] = float(credits)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return find_anomalies(series, days, first_loaded)
