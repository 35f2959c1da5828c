"""The simulator's HTTP face: CircleCI's two Usage API routes plus the pre-signed file downloads,
and `GET /project/{project-slug}` (the project's default branch).

Bodies, status codes and messages follow the official OpenAPI document
(https://circleci.com/api/v2/openapi.json, Usage tag) and what CircleCI-Labs verified against the
live API (github.com/CircleCI-Labs/terraform-provider-circleci, `internal/circleci/usage_export.go`),
so a client written from CircleCI's docs, even CircleCI-Support's curl + jq export script
(github.com/CircleCI-Support/generate_cci_usage_report), works against it with only the host
changed.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from usage_assets.circleci.models import ExportState
from usage_assets.circleci.timestamps import format_rfc3339, parse_rfc3339
from usage_assets.simulator.exports import ExportStore, SimulatedJob
from usage_assets.simulator.parts import SchemaDrift
from usage_assets.simulator.projects import ProjectDirectory, simulated_projects
from usage_assets.simulator.settings import Faults, SimulatorSettings
from usage_assets.simulator.signing import LinkSigner

API_PREFIX = "/api/v2"
DOWNLOAD_PREFIX = "/usage-exports"
_BODY_FIELDS = frozenset({"start", "end", "shared_org_ids"})
_CHUNK = 64 * 1024

# Verbatim messages from the spec's examples and CircleCI-Labs' verified behaviour.
MSG_INVALID_TOKEN = "Invalid token provided."
MSG_QUERY_AUTH = (
    "Support for query parameter authentication has been deprecated to improve security. "
    "Please use a supported authentication method such as header-based, or basic authentication."
)
MSG_ORG_NOT_FOUND = "Organization does not exist."
MSG_JOB_NOT_FOUND = "Usage export not found."
MSG_PROJECT_NOT_FOUND = "Project not found"
MSG_RATE_LIMITED = "Rate limit exceeded."
MSG_MALFORMED = "malformed request body"
MSG_UNEXPECTED_FIELD = "Unexpected field"
MSG_SERVER_ERROR = "Internal server error."


def _message(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status, headers=headers)


def _s3_error(code: str, text: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{text}</Message></Error>"
    )
    return Response(body, status_code=403, media_type="application/xml")


class UsageApiSimulator:
    """Owns the store and the link signer; `app` is the ASGI application."""

    def __init__(
        self, settings: SimulatorSettings | None = None, store: ExportStore | None = None
    ) -> None:
        self.settings = settings or SimulatorSettings()
        self.store = store or ExportStore(self.settings)
        self.signer = LinkSigner(secret=secrets.token_bytes(32))
        self.projects = ProjectDirectory(
            simulated_projects(self.store.usage, self.settings.org_ids)
        )
        # The slug of every project GET that passed the token check, in order (tests count them).
        self.project_requests: list[str] = []
        self.app = Starlette(
            routes=[
                Route(
                    f"{API_PREFIX}/organizations/{{org_id}}/usage_export_job",
                    self.create_export,
                    methods=["POST"],
                ),
                Route(
                    f"{API_PREFIX}/organizations/{{org_id}}/usage_export_job/{{job_id}}",
                    self.get_export,
                    methods=["GET"],
                ),
                Route(f"{API_PREFIX}/project/{{slug:path}}", self.get_project, methods=["GET"]),
                Route(
                    f"{DOWNLOAD_PREFIX}/{{org_id}}/{{job_id}}/{{name}}",
                    self.download,
                    methods=["GET"],
                ),
                Route("/_simulator/faults", self.set_faults, methods=["GET", "PUT"]),
                Route("/_simulator/health", self.health, methods=["GET"]),
            ],
        )

    @property
    def now(self) -> datetime:
        return self.settings.clock()

    # ------------------------------------------------------------------------------ API routes

    async def create_export(self, request: Request) -> Response:
        org_id = request.path_params["org_id"]
        refused = self._authorize(request, org_id)
        if refused:
            return refused
        # Quota is counted per authenticated request, before the body is looked at, the way a
        # gateway limiter works: a refused body still spends a slot. The client validates first.
        wait = self.store.post_limiter.acquire(org_id, self.now)
        if wait is not None:
            return _message(
                429, MSG_RATE_LIMITED, {"Retry-After": str(int(wait.total_seconds()) + 1)}
            )
        if self.store.chance(self.settings.faults.api_error_rate):
            return _message(500, MSG_SERVER_ERROR)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _message(400, MSG_MALFORMED)
        if not isinstance(body, dict):
            return _message(400, MSG_MALFORMED)
        unexpected = [key for key in body if key not in _BODY_FIELDS]
        if unexpected:
            # Only the first unexpected key is reported, as the real route does.
            return _message(400, f"{MSG_UNEXPECTED_FIELD}: {unexpected[0]}")
        parsed = _parse_window(body)
        if parsed is None:
            return _message(400, MSG_MALFORMED)
        start, end, shared = parsed
        problem = self.settings.window_rules.first_violation(start, end, self.now)
        if problem:
            return _message(400, problem)
        job = self.store.create(org_id, start, end, shared)
        return JSONResponse(
            {
                "usage_export_job_id": job.id,
                "state": ExportState.CREATED.value,  # the create route hard-codes it
                "start": format_rfc3339(start),
                "end": format_rfc3339(end),
                "download_urls": None,
            },
            status_code=201,
        )

    async def get_export(self, request: Request) -> Response:
        org_id = request.path_params["org_id"]
        refused = self._authorize(request, org_id)
        if refused:
            return refused
        wait = self.store.get_limiter.acquire(f"get:{org_id}", self.now)
        if wait is not None:
            return _message(
                429, MSG_RATE_LIMITED, {"Retry-After": str(int(wait.total_seconds()) + 1)}
            )
        if self.store.chance(self.settings.faults.api_error_rate):
            return _message(500, MSG_SERVER_ERROR)
        job = self.store.get(org_id, request.path_params["job_id"])
        if job is None:
            return _message(404, MSG_JOB_NOT_FOUND)
        return JSONResponse(self._status_body(job, str(request.base_url)))

    async def get_project(self, request: Request) -> Response:
        """A project by slug, in the spec's `Project` shape; 404 for a project the simulator does
        not generate (CircleCI answers the same for one the token's user may not see)."""
        refused = self._authorize_token(request)
        if refused:
            return refused
        slug = request.path_params["slug"]
        self.project_requests.append(slug)
        if self.store.chance(self.settings.faults.api_error_rate):
            return _message(500, MSG_SERVER_ERROR)
        project = self.projects.find(slug)
        if project is None:
            return _message(404, MSG_PROJECT_NOT_FOUND)
        return JSONResponse(project.body())

    def _status_body(self, job: SimulatedJob, base_url: str) -> dict[str, Any]:
        now = self.now
        state = job.state(now, self.settings.processing_time, self.settings.created_phase)
        body: dict[str, Any] = {
            "usage_export_job_id": job.id,
            "state": state.value,
            "download_urls": None,
        }
        if state is ExportState.FAILED:
            body["error_reason"] = job.failure_reason
        elif state is ExportState.COMPLETED and job.parts and self._links_listed(job, now):
            parts = job.parts
            omit = self.settings.faults.first_listing_omits_parts
            if omit and not job.links_listed:
                parts = parts[: max(len(parts) - omit, 1)]
            job.links_listed = True
            # Fresh links on every GET, valid from this moment.
            body["download_urls"] = [
                self.signer.sign(
                    base_url,
                    f"{DOWNLOAD_PREFIX}/{job.org_id}/{job.id}/{part.name}",
                    now,
                    self.settings.url_lifetime,
                )
                for part in parts
            ]
        return body

    def _links_listed(self, job: SimulatedJob, now: datetime) -> bool:
        delay = timedelta(seconds=self.settings.faults.links_listed_after_seconds)
        return not delay or now - job.created_at >= self.settings.processing_time + delay

    # ------------------------------------------------------------------------------ downloads

    async def download(self, request: Request) -> Response:
        params = request.path_params
        refusal = self.signer.refusal(request.url.path, dict(request.query_params), self.now)
        if refusal:
            code, _, text = refusal.partition(":")
            return _s3_error(code, text or "Access Denied")
        path = self.store.part_path(params["org_id"], params["job_id"], params["name"])
        if path is None:
            return Response(status_code=404)
        if self.store.chance(self.settings.faults.download_error_rate):
            return _s3_error_500()
        size = path.stat().st_size
        gate = self.settings.download_gate
        job_id = str(params["job_id"])
        return StreamingResponse(
            _read_file(
                path,
                self.settings.faults.download_bytes_per_second,
                hold=(lambda: gate.hold(job_id)) if gate is not None else None,
            ),
            media_type="application/x-gzip",
            headers={"Content-Length": str(size)},
        )

    # ------------------------------------------------------------------------------ control

    async def set_faults(self, request: Request) -> Response:
        """Read (GET) or replace (PUT, JSON with Faults' field names) the injected faults."""
        if request.method == "PUT":
            try:
                body = json.loads(await request.body())
                drift = body.pop("schema_drift", None)
                faults = Faults(**body)
                if drift is not None:
                    faults = replace(
                        faults, schema_drift=SchemaDrift(**{k: tuple(v) for k, v in drift.items()})
                    )
            except (TypeError, ValueError) as exc:
                return _message(400, f"bad faults: {exc}")
            self.settings.faults = faults
        return JSONResponse(asdict(self.settings.faults))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    # ------------------------------------------------------------------------------ helpers

    def _authorize(self, request: Request, org_id: str) -> Response | None:
        refused = self._authorize_token(request)
        if refused:
            return refused
        if org_id not in self.settings.org_ids:
            return _message(404, MSG_ORG_NOT_FOUND)
        return None

    def _authorize_token(self, request: Request) -> Response | None:
        if "circle-token" in request.query_params:
            return _message(401, MSG_QUERY_AUTH)
        token = request.headers.get("Circle-Token") or _basic_auth_user(
            request.headers.get("Authorization")
        )
        if not token or token not in self.settings.tokens:
            return _message(401, MSG_INVALID_TOKEN)
        return None


def _basic_auth_user(header: str | None) -> str | None:
    """HTTP basic auth with the token as user name and an empty password (the spec's alternative)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except ValueError:
        return None
    return decoded.partition(":")[0] or None


def _parse_window(body: dict[str, Any]) -> tuple[datetime, datetime, tuple[str, ...]] | None:
    """start, end and shared org ids, or None when any is malformed (the API names no field)."""
    try:
        start = parse_rfc3339(str(body["start"])).astimezone(UTC)
        end = parse_rfc3339(str(body["end"])).astimezone(UTC)
    except (KeyError, ValueError):
        return None
    shared = body.get("shared_org_ids", [])
    if not isinstance(shared, list):
        return None
    try:
        shared_ids = tuple(str(uuid.UUID(str(value))) for value in shared)
    except ValueError:
        return None
    return start, end, shared_ids


def _s3_error_500() -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>"
    )
    return Response(body, status_code=500, media_type="application/xml")


def _read_file(
    path: Any, bytes_per_second: int | None, hold: Callable[[], None] | None = None
) -> Iterator[bytes]:
    """The part's bytes, throttled to `bytes_per_second`; `hold` runs before the first byte
    (starlette iterates this in a worker thread, so blocking there holds only this download)."""
    if hold is not None:
        hold()
    chunk_size = min(_CHUNK, bytes_per_second) if bytes_per_second else _CHUNK
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk
            if bytes_per_second:
                time.sleep(len(chunk) / bytes_per_second)
