"""Typed views of the Usage API's JSON bodies, and their parsing.

The spec calls `download_urls` a required array, but the live API sends `null` for every state but
`completed` (and sometimes for `completed` too), so it is `None | tuple`. The create response echoes
`start`/`end`; the status response omits them and may carry `error_reason`.

Also the one non-usage body the pipeline reads: a project (`GET /project/{project-slug}`), for its
VCS default branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from usage_assets.circleci.errors import UnexpectedResponseError
from usage_assets.circleci.timestamps import parse_rfc3339


class ExportState(StrEnum):
    """Lifecycle of an export job: created -> processing -> completed | failed."""

    CREATED = "created"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (ExportState.COMPLETED, ExportState.FAILED)


@dataclass(frozen=True)
class ExportJob:
    """One usage export job as the API last described it.

    `download_urls` is kept out of the repr: each URL is a bearer credential for its file.
    """

    id: str
    state: ExportState
    start: datetime | None = None
    end: datetime | None = None
    download_urls: tuple[str, ...] | None = field(default=None, repr=False)
    error_reason: str | None = None


def parse_export_job(body: Any) -> ExportJob:
    """Parse a create (`usage_export_job`) or status (`get_usage_export_job_status`) body."""
    if not isinstance(body, Mapping):
        raise UnexpectedResponseError(
            f"expected a JSON object from the Usage API, got {type(body).__name__}"
        )
    job_id = body.get("usage_export_job_id")
    if not isinstance(job_id, str) or not job_id:
        raise UnexpectedResponseError("Usage API response has no usage_export_job_id")
    raw_state = body.get("state")
    try:
        state = ExportState(str(raw_state))
    except ValueError:
        raise UnexpectedResponseError(
            f"export job {job_id} has an unknown state {raw_state!r}; expected one of "
            f"{', '.join(s.value for s in ExportState)}"
        ) from None
    raw_urls = body.get("download_urls")
    if raw_urls is not None and (
        not isinstance(raw_urls, list) or not all(isinstance(u, str) for u in raw_urls)
    ):
        raise UnexpectedResponseError(
            f"export job {job_id}: download_urls is not a list of strings"
        )
    # The API drops error_reason when empty, so absent and "" mean the same thing.
    error_reason = body.get("error_reason") or None
    return ExportJob(
        id=job_id,
        state=state,
        start=_optional_time(body, "start", job_id),
        end=_optional_time(body, "end", job_id),
        download_urls=tuple(raw_urls) if raw_urls is not None else None,
        error_reason=str(error_reason) if error_reason is not None else None,
    )


def _optional_time(body: Mapping[str, Any], key: str, job_id: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        return parse_rfc3339(str(value))
    except ValueError:
        raise UnexpectedResponseError(
            f"export job {job_id}: {key} {value!r} is not RFC 3339"
        ) from None


@dataclass(frozen=True)
class VcsInfo:
    """`vcs_info` of a project: where its code lives and its default branch, per CircleCI."""

    vcs_url: str
    provider: str  # "GitHub", "Bitbucket" or "CircleCI" (GitHub App and GitLab projects)
    default_branch: str


@dataclass(frozen=True)
class Project:
    """The body of `GET /project/{project-slug}` (the OpenAPI `Project` schema)."""

    slug: str
    name: str
    id: str
    organization_name: str
    organization_slug: str
    organization_id: str
    vcs_info: VcsInfo


def parse_project(body: Any) -> Project:
    """Parse a `GET /project/{project-slug}` body; every field the spec requires must be a string."""
    if not isinstance(body, Mapping):
        raise UnexpectedResponseError(
            f"expected a JSON object from GET /project, got {type(body).__name__}"
        )
    vcs = body.get("vcs_info")
    if not isinstance(vcs, Mapping):
        raise UnexpectedResponseError("project response has no vcs_info object")

    def text(source: Mapping[str, Any], key: str, where: str) -> str:
        value = source.get(key)
        if not isinstance(value, str):
            raise UnexpectedResponseError(f"project response: {where}{key} is not a string")
        return value

    return Project(
        slug=text(body, "slug", ""),
        name=text(body, "name", ""),
        id=text(body, "id", ""),
        organization_name=text(body, "organization_name", ""),
        organization_slug=text(body, "organization_slug", ""),
        organization_id=text(body, "organization_id", ""),
        vcs_info=VcsInfo(
            vcs_url=text(vcs, "vcs_url", "vcs_info."),
            provider=text(vcs, "provider", "vcs_info."),
            default_branch=text(vcs, "default_branch", "vcs_info."),
        ),
    )


# The export's VCS_URL host -> the slug's VCS prefix, for projects set up through the OAuth
# integrations (classic GitHub and Bitbucket orgs).
_SLUG_PREFIXES = {"github.com": "gh", "bitbucket.org": "bb"}


def project_slug(vcs_url: str | None, organization_id: str, project_id: str) -> str:
    """The `project-slug` of a project of the usage export, for `GET /project/{project-slug}`.

    `https://github.com/<owner>/<repo>` -> `gh/<owner>/<repo>`, `https://bitbucket.org/...` ->
    `bb/...`; anything else (GitHub App and GitLab projects, whose slugs are
    `circleci/<organization id>/<project id>`) -> that form.

    Partly unverified: the `circleci/...` form is documented for GitHub App/GitLab projects, but
    whether an export's VCS_URL of such a project ever looks like a github.com URL (which would give
    a `gh/` slug that 404s) is not known from the real sample. A wrong slug costs only the API
    answer: the project falls back to the next source.
    """
    parts = urlsplit(vcs_url or "")
    prefix = _SLUG_PREFIXES.get((parts.hostname or "").lower())
    path = [segment for segment in parts.path.split("/") if segment]
    if prefix and len(path) == 2:
        owner, repo = path
        return f"{prefix}/{owner}/{repo.removesuffix('.git')}"
    return f"circleci/{organization_id}/{project_id}"
