"""CircleCI Usage API: typed client, models and errors."""

from usage_assets.circleci.client import (
    DEFAULT_BASE_URL,
    DownloadedPart,
    DownloadPace,
    RetryPolicy,
    UsageApiClient,
)
from usage_assets.circleci.errors import (
    ApiTransportError,
    BadRequestError,
    CorruptDownloadError,
    CreateNotSentError,
    CreateOutcomeUnknownError,
    DownloadError,
    DownloadLinkExpiredError,
    DownloadTooSlowError,
    ForbiddenError,
    InvalidExportRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
    UnexpectedResponseError,
    UsageApiError,
)
from usage_assets.circleci.models import ExportJob, ExportState, parse_export_job
from usage_assets.circleci.window import WindowRules

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiTransportError",
    "BadRequestError",
    "CorruptDownloadError",
    "CreateNotSentError",
    "CreateOutcomeUnknownError",
    "DownloadError",
    "DownloadLinkExpiredError",
    "DownloadPace",
    "DownloadTooSlowError",
    "DownloadedPart",
    "ExportJob",
    "ExportState",
    "ForbiddenError",
    "InvalidExportRequestError",
    "NotFoundError",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "UsageApiClient",
    "UsageApiError",
    "WindowRules",
    "parse_export_job",
]
