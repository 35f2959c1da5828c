"""RFC 3339 handling shared by the client (what it sends) and the simulator (what it accepts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# RFC 3339 date-time: full date, 'T' (or 't'/space is tolerated by some servers, not by us),
# time with optional fraction, and a mandatory offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware datetime; raise ValueError otherwise."""
    if not _RFC3339.match(text):
        raise ValueError(f"{text!r} is not an RFC 3339 date-time (e.g. 2025-01-31T00:00:00Z)")
    return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))


def format_rfc3339(moment: datetime) -> str:
    """UTC, whole seconds, `Z` suffix: the form CircleCI's own tools send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> datetime:
    return datetime.now(UTC)
