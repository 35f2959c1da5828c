"""CircleCI Usage API: typed client, models and errors."""

from usage_assets.api.client import (
    DEFAULT_BASE_URL,
    DownloadedPart,
    RetryPolicy,
    UsageApiClient,
)
from usage_assets.api.errors import (
    ApiTransportError,
    BadRequestError,
    CorruptDownloadError,
    CreateOutcomeUnknownError,
    DownloadError,
    DownloadLinkExpiredError,
    ForbiddenError,
    InvalidExportRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
    UnexpectedResponseError,
    UsageApiError,
)
from usage_assets.api.models import ExportJob, ExportState, parse_export_job
from usage_assets.api.window import WindowRules

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiTransportError",
    "BadRequestError",
    "CorruptDownloadError",
    "CreateOutcomeUnknownError",
    "DownloadError",
    "DownloadLinkExpiredError",
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
