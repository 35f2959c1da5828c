"""Every JSON body the simulator sends validates against CircleCI's official schemas.

The one deliberate deviation is the live API's `download_urls: null` (documented by CircleCI's own
support article and tools), so the schemas are loaded with that one relaxation and nothing else.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest

from usage_assets.circleci.timestamps import parse_rfc3339
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN
from usage_assets_tests.helpers import FakeClock

# Vendored from CircleCI's public OpenAPI document; fixtures/README.md names the exact source.
SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "usage_openapi_excerpt.json"
HEADERS = {"Circle-Token": DEFAULT_TOKEN}
DAY = datetime(2026, 11, 10, tzinfo=UTC)


def _spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.fail(f"the official OpenAPI excerpt is missing at {SPEC_PATH}")
    return json.loads(SPEC_PATH.read_text())


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value: object) -> bool:
        return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        return not isinstance(value, str) or parse_rfc3339(value) is not None

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme in ("http", "https") and parts.netloc)

    return checker


def schema(name: str, *, allow_null_urls: bool = True) -> dict[str, Any]:
    schemas = _spec()["components"]["schemas"]
    found = copy.deepcopy(schemas[name])
    if allow_null_urls:
        urls = found["properties"]["download_urls"]
        found["properties"]["download_urls"] = {"anyOf": [urls, {"type": "null"}]}
    return found


def error_schema(response_name: str) -> dict[str, Any]:
    response = _spec()["components"]["responses"][response_name]
    return response["content"]["application/json"]["schema"]


def validate(body: Any, against: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(against, format_checker=_format_checker()).validate(body)


@pytest.fixture
def http(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=HEADERS) as client:
        yield client


def create(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post(f"/organizations/{DEFAULT_ORG_ID}/usage_export_job", json=body)


def test_format_checker_is_not_vacuous() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(
            {"usage_export_job_id": "nope", "state": "created", "download_urls": None},
            schema("get_usage_export_job_status"),
        )
    with pytest.raises(jsonschema.ValidationError):
        validate(
            {"usage_export_job_id": str(uuid.uuid4()), "state": "created", "download_urls": None},
            schema("get_usage_export_job_status", allow_null_urls=False),
        )


def test_create_response_matches_usage_export_job(http: httpx.Client) -> None:
    response = create(http, start="2026-11-10T00:00:00Z", end="2026-11-10T23:59:59Z")
    assert response.status_code == 201
    validate(response.json(), schema("usage_export_job"))
    assert response.json()["download_urls"] is None


def test_status_responses_match_in_every_state(
    http: httpx.Client, sim: SimulatorServer, clock: FakeClock
) -> None:
    sim.settings.processing_time = timedelta(seconds=30)
    sim.settings.created_phase = timedelta(seconds=10)
    job_id = create(http, start="2026-11-10T00:00:00Z", end="2026-11-10T23:59:59Z").json()[
        "usage_export_job_id"
    ]
    sim.simulator.store.wait_until_written(job_id)
    seen = {}
    for step in (timedelta(0), timedelta(seconds=15), timedelta(seconds=30)):
        clock.advance(step)
        body = http.get(f"/organizations/{DEFAULT_ORG_ID}/usage_export_job/{job_id}").json()
        validate(body, schema("get_usage_export_job_status"))
        seen[body["state"]] = body
    assert set(seen) == {"created", "processing", "completed"}
    assert seen["completed"]["download_urls"]
    # With URLs present the strict official schema holds too.
    validate(seen["completed"], schema("get_usage_export_job_status", allow_null_urls=False))

    sim.settings.faults.job_failure_rate = 1.0
    failed_id = create(http, start="2026-11-10T00:00:00Z", end="2026-11-10T23:59:59Z").json()[
        "usage_export_job_id"
    ]
    sim.simulator.store.wait_until_written(failed_id)
    clock.advance(timedelta(seconds=31))
    failed = http.get(f"/organizations/{DEFAULT_ORG_ID}/usage_export_job/{failed_id}").json()
    validate(failed, schema("get_usage_export_job_status"))
    assert failed["state"] == "failed" and failed["error_reason"]


def test_by_default_the_first_get_already_reports_processing(
    http: httpx.Client, sim: SimulatorServer, clock: FakeClock
) -> None:
    """CircleCI's support script polls only while `processing`: a `created` GET would end it."""
    sim.settings.processing_time = timedelta(seconds=30)
    created = create(http, start="2026-11-10T00:00:00Z", end="2026-11-10T23:59:59Z").json()
    assert created["state"] == "created"
    url = f"/organizations/{DEFAULT_ORG_ID}/usage_export_job/{created['usage_export_job_id']}"
    sim.simulator.store.wait_until_written(created["usage_export_job_id"])
    states = []
    for step in (timedelta(0), timedelta(seconds=29), timedelta(seconds=1)):
        clock.advance(step)
        states.append(http.get(url).json()["state"])
    assert states == ["processing", "processing", "completed"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"start": "2026-11-10T00:00:00Z", "end": "2026-11-10T23:59:59Z", "project_id": "x"},
            "Unexpected field: project_id",
        ),
        ({"start": "2026-11-10", "end": "2026-11-10T23:59:59Z"}, "malformed request body"),
        (
            {
                "start": "2026-11-10T00:00:00Z",
                "end": "2026-11-10T23:59:59Z",
                "shared_org_ids": ["gh/acme"],
            },
            "malformed request body",
        ),
        ({"start": "2026-09-01T00:00:00Z", "end": "2026-10-15T00:00:00Z"}, "longer than 31 days"),
        (
            {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"},
            "more than 366 days ago",
        ),
        ({"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}, "in the future"),
        ({"start": "2026-11-10T00:00:00Z", "end": "2026-11-09T00:00:00Z"}, "before start"),
    ],
)
def test_bad_create_bodies_are_400_with_the_spec_body(
    http: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = create(http, **body)
    assert response.status_code == 400
    validate(response.json(), error_schema("400_unexpected_request_body"))
    assert message in response.json()["message"]


def test_error_bodies_match_their_schemas(sim: SimulatorServer, http: httpx.Client) -> None:
    unauthorized = httpx.get(
        f"{sim.base_url}/organizations/{DEFAULT_ORG_ID}/usage_export_job/{uuid.uuid4()}",
        headers={"Circle-Token": "wrong"},
    )
    assert unauthorized.status_code == 401
    validate(unauthorized.json(), error_schema("401_invalid_token"))
    assert unauthorized.json() == {"message": "Invalid token provided."}

    query_auth = httpx.get(
        f"{sim.base_url}/organizations/{DEFAULT_ORG_ID}/usage_export_job/{uuid.uuid4()}",
        params={"circle-token": DEFAULT_TOKEN},
    )
    assert query_auth.status_code == 401
    assert "query parameter authentication has been deprecated" in query_auth.json()["message"]

    missing_org = http.get(f"/organizations/{uuid.uuid4()}/usage_export_job/{uuid.uuid4()}")
    assert missing_org.status_code == 404
    validate(missing_org.json(), error_schema("404_entity_not_found"))
    assert missing_org.json() == {"message": "Organization does not exist."}

    sim.simulator.store.post_limiter.limit = 0
    limited = create(http, start="2026-11-10T00:00:00Z", end="2026-11-10T23:59:59Z")
    assert limited.status_code == 429
    validate(limited.json(), error_schema("429_rate_limit_exceeded"))


def test_server_error_body_matches(sim: SimulatorServer, http: httpx.Client) -> None:
    sim.settings.faults.api_error_rate = 1.0
    response = http.get(f"/organizations/{DEFAULT_ORG_ID}/usage_export_job/{uuid.uuid4()}")
    assert response.status_code == 500
    validate(response.json(), error_schema("500_internal_server_error"))


def test_basic_auth_with_token_as_user_is_accepted(sim: SimulatorServer) -> None:
    response = httpx.post(
        f"{sim.base_url}/organizations/{DEFAULT_ORG_ID}/usage_export_job",
        auth=(DEFAULT_TOKEN, ""),
        json={"start": "2026-11-10T00:00:00Z", "end": "2026-11-10T23:59:59Z"},
    )
    assert response.status_code == 201
