"""CircleCI's vocabulary, each word defined once: what an organization id looks like, which job
statuses count as success, failure and cancellation, which columns hold credits, and which of
those credits are seat fees rather than a job's.

Sources: the Usage API's report fields (https://circleci.com/api/v2/openapi.json, Usage tag) and
the job statuses CircleCI's Insights documents (https://circleci.com/docs/insights-glossary/).
"""

from __future__ import annotations

import uuid

from usage_assets.circleci.export_format import CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN

# Job statuses as they appear in JOB_BUILD_STATUS. A job "failed" when it ran and did not succeed
# for a reason of its own (including an infrastructure failure or a timeout); "canceled" is
# someone's (or auto-cancel's) decision, not a failure. Everything else (running, queued, blocked,
# not_run, on_hold, ...) has no outcome yet or never ran.
SUCCESS_STATUS = "success"
FAILURE_STATUSES: tuple[str, ...] = ("failed", "infrastructure_fail", "timedout")
CANCELED_STATUS = "canceled"

# The eight credit components and the total, as cleaned (snake_case) column names, in the
# export's documented order.
CREDIT_COLUMNS: tuple[str, ...] = tuple(
    name.lower() for name in (*CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN)
)
TOTAL_CREDITS = TOTAL_CREDITS_COLUMN.lower()

# Seat fees. USER_CREDITS are not a job's compute but seats: 25,000 credits per active user beyond
# the plan's included ones, deducted once per billing cycle (CircleCI's billing FAQ and "User types
# and registration"), and the export may put them on whatever job row the deduction landed on.
# So per-project figures (cost, chargeback, anomalies, forecasts) use **job credits**, the total
# minus the seat credits, the way CircleCI-Labs' usage reporter prices a row
# ((TOTAL_CREDITS - USER_CREDITS) x price); seat credits are reported once, as an org-level line.
# Job credits + seat credits = total credits, always.
SEAT_CREDITS = "user_credits"
# The same rule as SQL over any table with both columns (job_runs, daily_usage); a null (a job
# that never ran) counts as zero.
SEAT_CREDITS_SQL = f"coalesce({SEAT_CREDITS}, 0)"
JOB_CREDITS_SQL = f"(coalesce({TOTAL_CREDITS}, 0) - {SEAT_CREDITS_SQL})"


def job_credits(total_credits: float | None, seat_credits: float | None) -> float:
    """Job credits of one row or sum, in Python (JOB_CREDITS_SQL is the same rule in SQL)."""
    return (total_credits or 0.0) - (seat_credits or 0.0)


def is_uuid(value: str) -> bool:
    """An organization id as CircleCI shows it (Organization Settings > Overview): a hyphenated
    UUID, any case. Not the `gh/org` slug, and not a UUID in another spelling (braces, URN, no
    hyphens), which the API would not recognize."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False
