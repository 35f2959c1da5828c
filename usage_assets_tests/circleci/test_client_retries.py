"""How the client waits on a 429 from the GET endpoint: the server's Retry-After, within a bound."""

from __future__ import annotations

import time

import httpx
import pytest

from usage_assets.circleci import RateLimitedError, RetryPolicy, UsageApiClient

ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"
JOB = "e8235eed-f121-4ae3-9c72-2719d6572818"
COMPLETED = {"usage_export_job_id": JOB, "state": "completed", "download_urls": []}


def client_answering(answers: list[httpx.Response], sent: list[float]) -> UsageApiClient:
    """A client whose server gives `answers` in turn; `sent` gets the time of each request."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return answers[min(len(sent) - 1, len(answers) - 1)]

    return UsageApiClient(
        "tok",
        ORG,
        base_url="https://api.test/api/v2",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=3, base_delay_seconds=0.05, max_retry_after_seconds=5),
    )


@pytest.mark.parametrize(
    ("retry_after", "least_wait"),
    [
        ("1", 1.0),  # seconds
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: clocks disagree
        ("soon", 0.0),  # unreadable: the backoff applies
    ],
    ids=["seconds", "date-in-the-past", "unreadable"],
)
def test_a_429_is_retried_after_the_wait_the_server_asks_for(
    retry_after: str, least_wait: float
) -> None:
    sent: list[float] = []
    client = client_answering(
        [
            httpx.Response(
                429, json={"message": "Rate limit exceeded"}, headers={"Retry-After": retry_after}
            ),
            httpx.Response(200, json=COMPLETED),
        ],
        sent,
    )
    with client:
        assert client.get_export(JOB).state.value == "completed"
    assert len(sent) == 2
    assert sent[1] - sent[0] >= least_wait
    assert sent[1] - sent[0] < 3.0  # a date in the past never means "wait forever"


def test_a_retry_after_beyond_the_bound_fails_at_once_for_a_later_attempt() -> None:
    sent: list[float] = []
    client = client_answering(
        [
            httpx.Response(
                429, json={"message": "Rate limit exceeded"}, headers={"Retry-After": "3600"}
            )
        ],
        sent,
    )
    with client, pytest.raises(RateLimitedError, match="Retry after 3600 s") as raised:
        client.get_export(JOB)
    assert raised.value.retry_after == 3600
    assert len(sent) == 1
