"""Typed errors for the Usage API client.

Every message here is safe to show in a log, a Dagster event or a traceback: none of them holds the
token or a pre-signed download URL (whose query string is itself a credential). Callers branch on the
type; people read the message, which says what went wrong and what to do about it.
"""

from __future__ import annotations


class UsageApiError(Exception):
    """Base of every error the client raises after a request was attempted."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class InvalidExportRequestError(ValueError):
    """A create-export request the API would refuse; raised before any POST spends quota."""


class BadRequestError(UsageApiError):
    """HTTP 400: the API refused the request body or parameters."""


class UnauthorizedError(UsageApiError):
    """HTTP 401: the token is missing, invalid, or an old-format token."""


class ForbiddenError(UsageApiError):
    """HTTP 403 from the API itself (not a download link): the token may not read this org."""


class NotFoundError(UsageApiError):
    """HTTP 404: unknown organization or export job."""


class ProjectNotFoundError(NotFoundError):
    """HTTP 404 from `GET /project/{slug}`: no such project, or the token's user may not see it
    (CircleCI answers both the same way). Callers take it as "no answer", not as a failure."""


class RateLimitedError(UsageApiError):
    """HTTP 429. `retry_after` is the server's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=429)
        self.retry_after = retry_after


class ServerError(UsageApiError):
    """HTTP 5xx that persisted through the client's retries (or a POST, which is never retried)."""


class UnexpectedResponseError(UsageApiError):
    """A 2xx response whose body is not what the API documents."""


class ApiTransportError(UsageApiError):
    """The request never got an HTTP answer (connection refused, DNS, timeout) after retries."""


class CreateOutcomeUnknownError(ApiTransportError):
    """A create-export POST got no answer. The job may exist and the POST may have used quota.

    It is deliberately not retried: a blind retry could create a second job and spend a second slot.
    """


class CreateNotSentError(ApiTransportError):
    """A create-export POST never left this machine (the connection was refused or never made, or
    the request was invalid to send). No job exists and no quota was used."""


class DownloadError(UsageApiError):
    """A download of an export part failed."""


class DownloadLinkExpiredError(DownloadError):
    """The pre-signed link was refused (expired or altered). Re-read the job to get fresh links."""


class CorruptDownloadError(DownloadError):
    """The downloaded bytes are not a complete gzip stream, or fewer bytes arrived than announced."""


class DownloadTooSlowError(DownloadError):
    """A download stayed below the minimum throughput: the link trickles. A fresh link (re-read
    the job) is the next thing to try."""
