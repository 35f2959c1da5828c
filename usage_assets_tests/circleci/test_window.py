"""Window rules shared by client-side validation and the simulator's 400s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from usage_assets.circleci.window import WindowRules

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (NOW - timedelta(days=2), NOW - timedelta(days=1), None),
        (NOW - timedelta(days=31), NOW, None),  # exactly 31 x 24 h is allowed
        (NOW - timedelta(days=31, seconds=1), NOW, "longer than 31 days"),
        (NOW - timedelta(days=1), NOW - timedelta(days=2), "is before start"),
        (NOW - timedelta(days=366, seconds=1), NOW - timedelta(days=360), "more than 366 days ago"),
        (
            NOW - timedelta(days=1),
            NOW + timedelta(seconds=1),
            "end 2026-11-20T12:00:01Z is in the future",
        ),
        (
            NOW + timedelta(hours=1),
            NOW + timedelta(hours=2),
            "start 2026-11-20T13:00:00Z is in the future",
        ),
    ],
)
def test_first_violation(start: datetime, end: datetime, expected: str | None) -> None:
    problem = WindowRules().first_violation(start, end, NOW)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_checks_run_in_the_apis_order() -> None:
    # Both reversed and too old: the API reports the ordering problem first.
    problem = WindowRules().first_violation(
        NOW - timedelta(days=400), NOW - timedelta(days=500), NOW
    )
    assert problem is not None and "before start" in problem


def test_limits_are_settings() -> None:
    rules = WindowRules(max_window=timedelta(days=7), max_age=timedelta(days=30))
    assert "longer than 7 days" in (rules.first_violation(NOW - timedelta(days=8), NOW, NOW) or "")
    assert "more than 30 days ago" in (
        rules.first_violation(NOW - timedelta(days=31), NOW, NOW) or ""
    )
