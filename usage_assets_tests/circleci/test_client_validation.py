"""Client-side refusals: no request may leave the client for an invalid create."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from usage_assets.circleci import InvalidExportRequestError, RateLimitedError, UsageApiClient

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
def client(sent: list[httpx.Request]) -> UsageApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            201,
            json={
                "usage_export_job_id": "e8235eed-f121-4ae3-9c72-2719d6572818",
                "state": "created",
                "start": "2026-11-01T00:00:00Z",
                "end": "2026-11-01T23:59:59Z",
                "download_urls": None,
            },
        )

    return UsageApiClient(
        "tok",
        ORG,
        base_url="https://api.test/api/v2",
        transport=httpx.MockTransport(handler),
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("start", "end", "shared", "message"),
    [
        (datetime(2026, 11, 1), NOW, (), "has no time zone"),
        (datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=2))), NOW, (), "is not in UTC"),
        ("2026-11-01", NOW, (), "'2026-11-01' is not an RFC 3339"),
        (NOW, NOW - timedelta(days=1), (), "is before start"),
        (NOW - timedelta(days=400), NOW - timedelta(days=399), (), "more than 366 days ago"),
        (NOW - timedelta(days=1), NOW + timedelta(minutes=1), (), "in the future"),
        (NOW - timedelta(days=40), NOW - timedelta(days=1), (), "longer than 31 days"),
        (
            NOW - timedelta(days=2),
            NOW - timedelta(days=1),
            ("gh/my-org",),
            "'gh/my-org' is not a UUID",
        ),
    ],
)
def test_invalid_requests_are_refused_before_sending(
    client: UsageApiClient,
    sent: list[httpx.Request],
    start: object,
    end: object,
    shared: tuple[str, ...],
    message: str,
) -> None:
    with pytest.raises(InvalidExportRequestError, match=message):
        client.create_export(start, end, shared)  # type: ignore[arg-type]
    assert sent == []


def test_valid_request_body_and_headers(client: UsageApiClient, sent: list[httpx.Request]) -> None:
    client.create_export(
        "2026-11-01T00:00:00Z", "2026-11-01T23:59:59Z", ["6f0b5c1e-3c8d-4b8e-9a53-2f1e7d9c4a10"]
    )
    (request,) = sent
    assert request.method == "POST"
    assert request.url.path == f"/api/v2/organizations/{ORG}/usage_export_job"
    assert request.headers["Circle-Token"] == "tok"
    assert request.content == (
        b'{"start":"2026-11-01T00:00:00Z","end":"2026-11-01T23:59:59Z",'
        b'"shared_org_ids":["6f0b5c1e-3c8d-4b8e-9a53-2f1e7d9c4a10"]}'
    )


def test_retry_after_http_date_is_understood() -> None:
    when = "Wed, 21 Oct 2099 07:28:00 GMT"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"message": "Rate limit exceeded."}, headers={"Retry-After": when}
        )

    api = UsageApiClient(
        "tok",
        ORG,
        base_url="https://api.test/api/v2",
        transport=httpx.MockTransport(handler),
        clock=lambda: NOW,
    )
    with pytest.raises(RateLimitedError) as caught:
        api.get_export("e8235eed-f121-4ae3-9c72-2719d6572818")
    assert caught.value.retry_after is not None and caught.value.retry_after > 1e9


def test_download_never_sends_the_token(tmp_path: Path) -> None:
    import gzip

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(gzip.compress(b"A\n1\n")))

    api = UsageApiClient(
        "tok", ORG, base_url="https://api.test/api/v2", transport=httpx.MockTransport(handler)
    )
    api.download("https://bucket.test/p.csv.gz?X-Amz-Signature=abc", tmp_path / "p.csv.gz")
    assert "Circle-Token" not in seen[0].headers


@pytest.mark.parametrize(
    ("token", "org", "message"), [("", ORG, "CIRCLECI_TOKEN"), ("t", "", "CIRCLECI_ORG_ID")]
)
def test_missing_credentials_name_the_variable(token: str, org: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UsageApiClient(token, org)
