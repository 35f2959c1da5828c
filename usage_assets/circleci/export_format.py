"""The shape of a CircleCI usage export file, as the real API writes it.

One place that both the simulator (which writes such files) and the cleaning code (which reads
them) rely on, so the two can never drift apart. Facts come from a real export
(`CircleCI-Public/multi_org_usage_report`, `usage_reports/`, 2025-03) and the official field
list (the "Report Fields" of the Usage tag in https://circleci.com/api/v2/openapi.json, rendered
at https://circleci.com/docs/api/v2/index.html#tag/Usage).
"""

from __future__ import annotations

from enum import StrEnum


class ColumnKind(StrEnum):
    """How a column's text is to be read. The file itself carries no types."""

    TEXT = "text"
    UUID = "uuid"
    DATE = "date"  # YYYY-MM-DD
    TIMESTAMP = "timestamp"  # YYYY-MM-DD HH:MM:SS.fff, UTC, no offset
    BOOLEAN = "boolean"  # true / false
    INTEGER = "integer"
    NUMBER = "number"  # integers in every file seen so far, but documented as plain numbers


# The 48 columns in the order the real files use. Note JOB_RUN_NUMBER comes before JOB_ID,
# unlike the spec's field list: readers must go by header name, never by position.
EXPORT_COLUMNS: tuple[tuple[str, ColumnKind], ...] = (
    ("ORGANIZATION_ID", ColumnKind.UUID),
    ("ORGANIZATION_NAME", ColumnKind.TEXT),
    ("ORGANIZATION_CREATED_DATE", ColumnKind.DATE),
    ("PROJECT_ID", ColumnKind.UUID),
    ("PROJECT_NAME", ColumnKind.TEXT),
    ("PROJECT_CREATED_DATE", ColumnKind.DATE),
    ("LAST_BUILD_FINISHED_AT", ColumnKind.TIMESTAMP),
    ("VCS_NAME", ColumnKind.TEXT),
    ("VCS_URL", ColumnKind.TEXT),
    ("VCS_BRANCH", ColumnKind.TEXT),
    ("PIPELINE_ID", ColumnKind.UUID),
    ("PIPELINE_CREATED_AT", ColumnKind.TIMESTAMP),
    ("PIPELINE_NUMBER", ColumnKind.INTEGER),
    ("IS_UNREGISTERED_USER", ColumnKind.BOOLEAN),
    ("PIPELINE_TRIGGER_SOURCE", ColumnKind.TEXT),
    ("PIPELINE_TRIGGER_USER_ID", ColumnKind.UUID),
    ("WORKFLOW_ID", ColumnKind.UUID),
    ("WORKFLOW_NAME", ColumnKind.TEXT),
    ("WORKFLOW_FIRST_JOB_QUEUED_AT", ColumnKind.TIMESTAMP),
    ("WORKFLOW_FIRST_JOB_STARTED_AT", ColumnKind.TIMESTAMP),
    ("WORKFLOW_STOPPED_AT", ColumnKind.TIMESTAMP),
    ("IS_WORKFLOW_SUCCESSFUL", ColumnKind.BOOLEAN),
    ("JOB_NAME", ColumnKind.TEXT),
    ("JOB_RUN_NUMBER", ColumnKind.INTEGER),
    ("JOB_ID", ColumnKind.UUID),
    ("JOB_RUN_DATE", ColumnKind.DATE),
    ("JOB_RUN_QUEUED_AT", ColumnKind.TIMESTAMP),
    ("JOB_RUN_STARTED_AT", ColumnKind.TIMESTAMP),
    ("JOB_RUN_STOPPED_AT", ColumnKind.TIMESTAMP),
    ("JOB_BUILD_STATUS", ColumnKind.TEXT),
    ("RESOURCE_CLASS", ColumnKind.TEXT),
    ("OPERATING_SYSTEM", ColumnKind.TEXT),
    ("EXECUTOR", ColumnKind.TEXT),
    ("PARALLELISM", ColumnKind.INTEGER),
    ("JOB_RUN_SECONDS", ColumnKind.NUMBER),
    ("MEDIAN_CPU_UTILIZATION_PCT", ColumnKind.NUMBER),
    ("MAX_CPU_UTILIZATION_PCT", ColumnKind.NUMBER),
    ("MEDIAN_RAM_UTILIZATION_PCT", ColumnKind.NUMBER),
    ("MAX_RAM_UTILIZATION_PCT", ColumnKind.NUMBER),
    ("COMPUTE_CREDITS", ColumnKind.NUMBER),
    ("DLC_CREDITS", ColumnKind.NUMBER),
    ("USER_CREDITS", ColumnKind.NUMBER),
    ("STORAGE_CREDITS", ColumnKind.NUMBER),
    ("NETWORK_CREDITS", ColumnKind.NUMBER),
    ("LEASE_CREDITS", ColumnKind.NUMBER),
    ("LEASE_OVERAGE_CREDITS", ColumnKind.NUMBER),
    ("IPRANGES_CREDITS", ColumnKind.NUMBER),
    ("TOTAL_CREDITS", ColumnKind.NUMBER),
)

EXPORT_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in EXPORT_COLUMNS)
COLUMN_KINDS: dict[str, ColumnKind] = dict(EXPORT_COLUMNS)

# TOTAL_CREDITS is the sum of these (held for every row of the real sample).
CREDIT_COMPONENT_COLUMNS: tuple[str, ...] = (
    "COMPUTE_CREDITS",
    "DLC_CREDITS",
    "USER_CREDITS",
    "STORAGE_CREDITS",
    "NETWORK_CREDITS",
    "LEASE_CREDITS",
    "LEASE_OVERAGE_CREDITS",
    "IPRANGES_CREDITS",
)
TOTAL_CREDITS_COLUMN = "TOTAL_CREDITS"

# The real files hold the three characters `\\N` for a null (an escaped `\N`). Readers also
# accept `\N` and the empty string, which other exports and hand-edited files use.
NULL_MARKER = "\\\\N"
NULL_SPELLINGS: tuple[str, ...] = (NULL_MARKER, "\\N", "")

DATE_FORMAT = "%Y-%m-%d"
TRUE_TEXT = "true"
FALSE_TEXT = "false"
