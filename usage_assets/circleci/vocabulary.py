"""CircleCI's vocabulary, each word defined once: what an organization id looks like, which job
statuses count as success, failure and cancellation, and which columns hold credits.

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


def is_uuid(value: str) -> bool:
    """An organization id as CircleCI shows it (Organization Settings > Overview): a hyphenated
    UUID, any case. Not the `gh/org` slug, and not a UUID in another spelling (braces, URN, no
    hyphens), which the API would not recognize."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False
