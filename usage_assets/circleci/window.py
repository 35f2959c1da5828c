"""The create-export window rules, shared by the client (to refuse before spending a POST) and the
simulator (to answer 400 like the real API).

CircleCI's create handler runs four checks in this order, each its own 400 (terraform provider,
`internal/circleci/usage_export.go`): end before start; start older than now - 366 days; either
bound in the future; window wider than 31 x 24 h. The spec's prose says "32 days" and "13 months",
but the handler's numbers are the ones that refuse requests, so they are the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from usage_assets.circleci.timestamps import format_rfc3339

DEFAULT_MAX_WINDOW = timedelta(days=31)
DEFAULT_MAX_AGE = timedelta(days=366)


@dataclass(frozen=True)
class WindowRules:
    """Limits on one export's time window."""

    max_window: timedelta = DEFAULT_MAX_WINDOW
    max_age: timedelta = DEFAULT_MAX_AGE

    def first_violation(self, start: datetime, end: datetime, now: datetime) -> str | None:
        """The message for the first rule the window breaks, in the API's order, or None."""
        if end < start:
            return f"end {format_rfc3339(end)} is before start {format_rfc3339(start)}"
        oldest = now - self.max_age
        if start < oldest:
            return (
                f"start {format_rfc3339(start)} is more than {_days(self.max_age)} days ago; the "
                f"Usage API keeps data back to {format_rfc3339(oldest)}"
            )
        for name, bound in (("start", start), ("end", end)):
            if bound > now:
                return f"{name} {format_rfc3339(bound)} is in the future (now is {format_rfc3339(now)})"
        if end - start > self.max_window:
            return (
                f"window {format_rfc3339(start)} .. {format_rfc3339(end)} is longer than "
                f"{_days(self.max_window)} days; split it into several exports"
            )
        return None


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g}"
