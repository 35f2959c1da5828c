"""HTTP client for CircleCI's Usage API (create export, get export, download a part), and the one
project call the insights need (get a project, for its default branch).

Only this module speaks HTTP. It validates a create request before sending it (a POST is rate
limited to about ten a day), retries what is safe to retry (GETs and downloads, on 5xx and
connection failures), never retries a POST (one that timed out may have created a job and spent
quota), and keeps the token and pre-signed URLs out of every message it produces.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

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
    ProjectNotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
    UnexpectedResponseError,
    UsageApiError,
)
from usage_assets.circleci.gzip_check import GzipStreamVerifier
from usage_assets.circleci.models import ExportJob, Project, parse_export_job, parse_project
from usage_assets.circleci.redaction import install_log_redaction
from usage_assets.circleci.timestamps import format_rfc3339, parse_rfc3339, utc_now
from usage_assets.circleci.vocabulary import is_uuid
from usage_assets.circleci.window import WindowRules

DEFAULT_BASE_URL = "https://circleci.com/api/v2"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Downloads of large parts stream for a while; the read timeout is per chunk, not per file.
DEFAULT_DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_T = TypeVar("_T")

install_log_redaction()


@dataclass(frozen=True)
class DownloadedPart:
    """A part written to disk and verified as a complete gzip stream."""

    path: Path
    compressed_bytes: int
    decompressed_bytes: int
    data_rows: int


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for idempotent requests.

    A 429 on a GET is retried after the server's Retry-After when that is at most
    `max_retry_after_seconds` (a run may wait that long; a longer wait fails the run and the
    sensor's next attempt picks it up). A Retry-After in the past (clock skew) waits the backoff.
    """

    max_attempts: int = 4
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)


@dataclass(frozen=True)
class DownloadPace:
    """The slowest download we accept: after `grace_seconds`, a part must have averaged at least
    `min_bytes_per_second`, or the attempt is abandoned (DownloadTooSlowError). A link that
    trickles but is never idle for the read timeout would otherwise run forever. The defaults
    let a 500 MB part take about 2 h 15 min."""

    min_bytes_per_second: float = 64 * 1024
    grace_seconds: float = 120.0

    def check(self, received: int, elapsed: float, label: str) -> None:
        if elapsed > self.grace_seconds and received < self.min_bytes_per_second * elapsed:
            raise DownloadTooSlowError(
                f"download of {label} too slow: {received} bytes in {elapsed:.0f} s, below the "
                f"minimum of {self.min_bytes_per_second:.0f} bytes/s"
            )


class _Retryable(Exception):
    """Internal: a failure worth another attempt; carries the error to raise if none is left,
    and the wait the server asked for, if it did."""

    def __init__(self, error: UsageApiError, wait_seconds: float | None = None) -> None:
        self.error = error
        self.wait_seconds = wait_seconds


class UsageApiClient:
    """A client for one organization's usage exports.

    Args:
        token: a CircleCI personal API token, sent as the `Circle-Token` header. Never logged.
        org_id: the organization's UUID (Organization Settings > Overview), not the `gh/org` slug.
        base_url: the API root; the embedded simulator's URL in the demo and tests.
        window_rules: the window limits checked before a POST is sent.
        retry: backoff for GETs and downloads.
        transport: an httpx transport, for tests.
        clock: the "now" used to refuse future or too-old windows.
    """

    def __init__(
        self,
        token: str,
        org_id: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        download_timeout: httpx.Timeout = DEFAULT_DOWNLOAD_TIMEOUT,
        window_rules: WindowRules | None = None,
        retry: RetryPolicy | None = None,
        download_pace: DownloadPace | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not token:
            raise ValueError("a CircleCI API token is required (set CIRCLECI_TOKEN)")
        if not org_id:
            raise ValueError("a CircleCI organization id is required (set CIRCLECI_ORG_ID)")
        self.org_id = org_id
        self.base_url = base_url.rstrip("/")
        self.window_rules = window_rules or WindowRules()
        self.retry = retry or RetryPolicy()
        self.download_pace = download_pace or DownloadPace()
        self._clock = clock
        self._download_timeout = download_timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Circle-Token": token, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        # Pre-signed URLs carry their own credential; the token must never travel with them.
        self._downloads = httpx.Client(
            timeout=download_timeout, transport=transport, follow_redirects=True
        )

    def __repr__(self) -> str:
        return f"UsageApiClient(base_url={self.base_url!r}, org_id={self.org_id!r})"

    def close(self) -> None:
        self._http.close()
        self._downloads.close()

    def __enter__(self) -> UsageApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- requests

    def validate_export_request(
        self, start: datetime | str, end: datetime | str, shared_org_ids: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The JSON body for a create request, or InvalidExportRequestError naming the bad value."""
        start_at = _as_utc("start", start)
        end_at = _as_utc("end", end)
        problem = self.window_rules.first_violation(start_at, end_at, self._clock())
        if problem:
            raise InvalidExportRequestError(f"export window refused before sending: {problem}")
        for org in shared_org_ids:
            if not is_uuid(org):
                raise InvalidExportRequestError(
                    f"shared org id {org!r} is not a UUID; use the organization id from "
                    "Organization Settings > Overview, not the gh/org slug"
                )
        body: dict[str, Any] = {"start": format_rfc3339(start_at), "end": format_rfc3339(end_at)}
        if shared_org_ids:
            body["shared_org_ids"] = list(shared_org_ids)
        return body

    def create_export(
        self, start: datetime | str, end: datetime | str, shared_org_ids: Sequence[str] = ()
    ) -> ExportJob:
        """POST a new export job. Spends one slot of the org's POST quota when it reaches the API.

        Never retried. A timeout or dropped connection raises CreateOutcomeUnknownError, because the
        job may exist anyway; a request that never left the machine raises CreateNotSentError.
        """
        body = self.validate_export_request(start, end, shared_org_ids)
        path = self._org_path("usage_export_job")
        try:
            response = self._http.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.LocalProtocolError) as exc:
            # Raised before a byte of the request reached the API: no connection was made, or
            # httpx refused to send it (an illegal header value, such as a token with a CR).
            raise CreateNotSentError(
                f"POST {path} was not sent ({type(exc).__name__}); no export job was created and "
                "no POST slot was spent."
            ) from None
        except httpx.TransportError as exc:
            raise CreateOutcomeUnknownError(
                f"POST {path} got no answer ({type(exc).__name__}); the export job may have been "
                "created and a POST slot spent. Check the quota ledger before trying again."
            ) from None
        _raise_for_status("POST", path, response)
        return _json_job("POST", path, response)

    def get_export(self, job_id: str) -> ExportJob:
        """GET an export job's state. Each call on a completed job mints fresh download URLs."""
        path = self._org_path(f"usage_export_job/{job_id}")
        return self._get(path, lambda response: _json_job("GET", path, response))

    def get_project(self, project_slug: str) -> Project:
        """GET a project (`{base_url}/project/{project_slug}`), for its `vcs_info.default_branch`.

        The same token, timeouts and retries as get_export. A 404, which CircleCI also answers
        when the token's user may not see the project, raises ProjectNotFoundError.
        """
        # Each segment escaped, the slashes between them kept (the API takes both forms).
        path = "/project/" + "/".join(quote(part, safe="") for part in project_slug.split("/"))
        try:
            return self._get(
                path, lambda response: parse_project(_json_body("GET", path, response))
            )
        except NotFoundError as exc:
            raise ProjectNotFoundError(
                f"GET {path} -> HTTP 404: no such project, or the token's user may not read it",
                status_code=exc.status_code,
            ) from None

    def _get(self, path: str, parse: Callable[[httpx.Response], _T]) -> _T:
        """A GET under the API base, retried on 5xx, 429 (within max_retry_after_seconds) and
        transport failures; other errors are raised as typed errors."""

        def attempt() -> _T:
            try:
                response = self._http.get(path)
            except httpx.TransportError as exc:
                raise _Retryable(
                    ApiTransportError(f"GET {path} failed: {type(exc).__name__}")
                ) from None
            if response.status_code >= 500:
                raise _Retryable(_error_for("GET", path, response))
            if response.status_code == 429:
                error = _error_for("GET", path, response)
                wait = _retry_after_seconds(response)
                if wait is not None and wait > self.retry.max_retry_after_seconds:
                    raise error
                raise _Retryable(error, wait_seconds=wait)
            _raise_for_status("GET", path, response)
            return parse(response)

        return self._with_retries(attempt)

    def download(self, url: str, dest: Path) -> DownloadedPart:
        """Stream one part to `dest`, verified as complete gzip, written atomically.

        The file appears at `dest` only once every byte arrived and decompressed cleanly; a failed
        download leaves nothing behind. A refused link (HTTP 403) raises DownloadLinkExpiredError at
        once: re-read the job with get_export() for fresh links.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        label = dest.name

        def attempt() -> DownloadedPart:
            with _temporary_sibling(dest) as tmp:
                verifier = GzipStreamVerifier()
                try:
                    with self._downloads.stream("GET", url) as response:
                        if response.status_code == 403:
                            raise DownloadLinkExpiredError(
                                f"download of {label} refused (HTTP 403): the pre-signed link has "
                                "expired or was altered; re-read the export job for fresh links",
                                status_code=403,
                            )
                        if response.status_code >= 500:
                            raise _Retryable(
                                DownloadError(
                                    f"download of {label} failed with HTTP {response.status_code}",
                                    status_code=response.status_code,
                                )
                            )
                        if response.status_code != 200:
                            raise DownloadError(
                                f"download of {label} failed with HTTP {response.status_code}",
                                status_code=response.status_code,
                            )
                        announced = response.headers.get("Content-Length")
                        started = time.monotonic()
                        with tmp.open("wb") as out:
                            # As the bytes arrive (a chunk size would buffer up to it, and
                            # hide a trickling link from the pace check until the end).
                            for chunk in response.iter_raw():
                                out.write(chunk)
                                verifier.feed(chunk)
                                self.download_pace.check(
                                    verifier.compressed_bytes, time.monotonic() - started, label
                                )
                            out.flush()
                            os.fsync(out.fileno())
                except httpx.TransportError as exc:
                    raise _Retryable(
                        DownloadError(f"download of {label} broke off: {type(exc).__name__}")
                    ) from None
                except DownloadTooSlowError as exc:
                    raise _Retryable(exc) from None
                except ValueError as exc:
                    raise _Retryable(CorruptDownloadError(f"download of {label}: {exc}")) from None
                if announced is not None and int(announced) != verifier.compressed_bytes:
                    raise _Retryable(
                        CorruptDownloadError(
                            f"download of {label}: {verifier.compressed_bytes} bytes arrived, "
                            f"{announced} were announced"
                        )
                    )
                try:
                    verifier.finish()
                except ValueError as exc:
                    raise _Retryable(CorruptDownloadError(f"download of {label}: {exc}")) from None
                os.replace(tmp, dest)
            return DownloadedPart(
                path=dest,
                compressed_bytes=verifier.compressed_bytes,
                decompressed_bytes=verifier.decompressed_bytes,
                data_rows=verifier.data_rows,
            )

        return self._with_retries(attempt)

    # ----------------------------------------------------------------------------- internals

    def _org_path(self, suffix: str) -> str:
        return f"/organizations/{self.org_id}/{suffix}"

    def _with_retries(self, attempt: Callable[[], _T]) -> _T:
        for number in range(1, self.retry.max_attempts + 1):
            try:
                return attempt()
            except _Retryable as retryable:
                if number == self.retry.max_attempts:
                    raise retryable.error from None
                backoff = self.retry.delay(number)
                wait = retryable.wait_seconds
                time.sleep(max(wait, backoff) if wait is not None else backoff)
        raise AssertionError("unreachable")  # pragma: no cover


def _as_utc(name: str, value: datetime | str) -> datetime:
    if isinstance(value, str):
        try:
            value = parse_rfc3339(value)
        except ValueError as exc:
            raise InvalidExportRequestError(f"{name}: {exc}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidExportRequestError(
            f"{name} {value.isoformat()!r} has no time zone; pass a UTC time such as "
            f"{value.strftime('%Y-%m-%dT%H:%M:%S')}Z"
        )
    if value.utcoffset() != UTC.utcoffset(None):
        raise InvalidExportRequestError(
            f"{name} {value.isoformat()!r} is not in UTC; the Usage API takes UTC times"
        )
    return value.astimezone(UTC)


def _api_message(response: httpx.Response) -> str:
    """The API's `{"message": ...}` text, or a short excerpt of whatever came back."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return text[:200] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(body)[:200]


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _error_for(method: str, path: str, response: httpx.Response) -> UsageApiError:
    status = response.status_code
    where = f"{method} {path} -> HTTP {status}: {_api_message(response)}"
    if status == 400:
        return BadRequestError(where, status_code=status)
    if status == 401:
        return UnauthorizedError(
            f"{where}. Check CIRCLECI_TOKEN: it must be a personal API token created after "
            "2023-06-23 (project tokens are not accepted).",
            status_code=status,
        )
    if status == 403:
        return ForbiddenError(
            f"{where}. The token's user may not read this organization.", status_code=status
        )
    if status == 404:
        return NotFoundError(
            f"{where}. Check CIRCLECI_ORG_ID (the organization UUID) and the export job id.",
            status_code=status,
        )
    if status == 429:
        retry_after = _retry_after_seconds(response)
        hint = f" Retry after {retry_after:.0f} s." if retry_after is not None else ""
        return RateLimitedError(f"{where}.{hint}", retry_after=retry_after)
    if status >= 500:
        return ServerError(where, status_code=status)
    return UsageApiError(where, status_code=status)


def _raise_for_status(method: str, path: str, response: httpx.Response) -> None:
    if not response.is_success:
        raise _error_for(method, path, response)


def _json_body(method: str, path: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponseError(
            f"{method} {path} answered HTTP {response.status_code} with a body that is not JSON",
            status_code=response.status_code,
        ) from None


def _json_job(method: str, path: str, response: httpx.Response) -> ExportJob:
    return parse_export_job(_json_body(method, path, response))


@contextmanager
def _temporary_sibling(dest: Path) -> Iterator[Path]:
    """A temp path in dest's folder (so os.replace is atomic), removed unless it was moved."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
