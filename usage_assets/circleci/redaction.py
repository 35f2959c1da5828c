"""Keeping credentials out of logs.

A pre-signed download URL's query string is a bearer credential, and httpx logs every request URL
at INFO level. The filter installed here rewrites those log records, so a Dagster run that captures
Python logs never stores a usable link.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import httpx

REDACTED = "REDACTED"


def redact_url(url: str | httpx.URL) -> str:
    """The URL without query string, fragment or user info: enough to know which host and path."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


class RedactUrlsFilter(logging.Filter):
    """Rewrites URL arguments of log records (httpx passes `request.url` as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact_url(arg)
                if isinstance(arg, (httpx.URL, str)) and _looks_like_url(arg)
                else arg
                for arg in record.args
            )
        return True


def _looks_like_url(value: httpx.URL | str) -> bool:
    return str(value).startswith(("http://", "https://"))


_FILTER = RedactUrlsFilter()


def install_log_redaction() -> None:
    """Attach the filter to the loggers that print request URLs (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
