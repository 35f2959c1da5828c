"""`get_project` against the simulator over real HTTP, and the export row -> slug mapping."""

from __future__ import annotations

import logging

import httpx
import pytest

from usage_assets.circleci import (
    NotFoundError,
    ProjectNotFoundError,
    RetryPolicy,
    ServerError,
    UnauthorizedError,
    UnexpectedResponseError,
    UsageApiClient,
    project_slug,
)
from usage_assets.simulator.projects import simulated_projects
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN, Faults

ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"
PROJECT = "0a3c7d52-3c4f-4d1e-8a8f-5e8b7f6a1c20"


def test_a_generated_project_comes_back_in_the_specs_shape(
    client: UsageApiClient, sim: SimulatorServer
) -> None:
    expected = simulated_projects(sim.simulator.store.usage, [DEFAULT_ORG_ID])[0]
    slug = project_slug(expected.vcs_url, expected.organization_id, expected.id)
    assert slug.startswith("gh/")

    project = client.get_project(slug)

    owner = expected.vcs_url.split("/")[3]
    assert project.slug == slug
    assert (project.id, project.name) == (expected.id, expected.name)
    assert (project.organization_id, project.organization_slug) == (DEFAULT_ORG_ID, f"gh/{owner}")
    assert project.organization_name == sim.simulator.store.usage.org_name(DEFAULT_ORG_ID)
    assert project.vcs_info.vcs_url == expected.vcs_url
    assert project.vcs_info.provider == "GitHub"
    assert project.vcs_info.default_branch == expected.default_branch
    # The same project by its other slugs: the long VCS name, and circleci/<org id>/<project id>.
    assert client.get_project("github/" + slug.removeprefix("gh/")).id == expected.id
    assert client.get_project(f"circleci/{DEFAULT_ORG_ID}/{expected.id}").id == expected.id
    assert sim.simulator.project_requests == [
        slug,
        "github/" + slug.removeprefix("gh/"),
        f"circleci/{DEFAULT_ORG_ID}/{expected.id}",
    ]


def test_an_unknown_project_is_a_typed_not_found(client: UsageApiClient) -> None:
    with pytest.raises(ProjectNotFoundError, match="no such project") as caught:
        client.get_project("gh/nobody/nothing")
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.status_code == 404
    assert DEFAULT_TOKEN not in str(caught.value)


def test_a_bad_token_is_401_and_appears_nowhere(
    sim: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "not-a-real-token-5f2c"
    with (
        UsageApiClient(token, DEFAULT_ORG_ID, base_url=sim.base_url) as bad,
        pytest.raises(UnauthorizedError, match="Invalid token provided") as caught,
    ):
        bad.get_project("gh/nobody/nothing")
    assert caught.value.status_code == 401
    assert token not in str(caught.value)
    assert token not in caplog.text
    assert "/project/gh/nobody/nothing" in caplog.text  # the request was logged, without it
    assert sim.simulator.project_requests == []  # refused before the project was looked up


def test_server_errors_are_retried_like_every_get(
    client: UsageApiClient, sim: SimulatorServer
) -> None:
    sim.simulator.settings.faults = Faults(api_error_rate=1.0)
    with pytest.raises(ServerError):
        client.get_project("gh/nobody/nothing")
    assert len(sim.simulator.project_requests) == client.retry.max_attempts == 3


def test_a_body_without_vcs_info_is_an_unexpected_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"slug": "gh/a/b", "name": "b"})

    with (
        UsageApiClient(
            "t",
            ORG,
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(max_attempts=1),
        ) as api,
        pytest.raises(UnexpectedResponseError, match="vcs_info"),
    ):
        api.get_project("gh/a/b")


def test_slug_segments_are_escaped_and_the_slashes_kept() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"message": "Project not found"})

    with (
        UsageApiClient("t", ORG, transport=httpx.MockTransport(handler)) as api,
        pytest.raises(ProjectNotFoundError),
    ):
        api.get_project("gh/my org/repo#1")
    assert seen == ["/api/v2/project/gh/my%20org/repo%231"]


@pytest.mark.parametrize(
    ("vcs_url", "slug"),
    [
        ("https://github.com/acme/web", "gh/acme/web"),
        ("https://github.com/acme/web.git", "gh/acme/web"),
        ("https://GitHub.com/Acme/Web", "gh/Acme/Web"),
        ("https://bitbucket.org/acme/api", "bb/acme/api"),
        # GitHub App and GitLab projects, and anything unrecognised: the circleci/ form.
        ("https://gitlab.com/acme/web", f"circleci/{ORG}/{PROJECT}"),
        ("https://github.com/acme", f"circleci/{ORG}/{PROJECT}"),
        ("", f"circleci/{ORG}/{PROJECT}"),
        (None, f"circleci/{ORG}/{PROJECT}"),
    ],
)
def test_the_slug_of_an_export_row(vcs_url: str | None, slug: str) -> None:
    assert project_slug(vcs_url, ORG, PROJECT) == slug
