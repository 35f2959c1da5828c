"""Parsing the API's job bodies, quirks included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from usage_assets.circleci import ExportState, UnexpectedResponseError, parse_export_job

JOB_ID = "e8235eed-f121-4ae3-9c72-2719d6572818"


def test_create_body_with_null_urls() -> None:
    job = parse_export_job(
        {
            "usage_export_job_id": JOB_ID,
            "state": "created",
            "start": "2025-11-01T00:00:00Z",
            "end": "2025-11-17T16:00:00Z",
            "download_urls": None,
        }
    )
    assert job.state is ExportState.CREATED
    assert job.download_urls is None and len(job.download_urls or ()) == 0
    assert job.start == datetime(2025, 11, 1, tzinfo=UTC)


def test_status_body_without_start_end() -> None:
    job = parse_export_job(
        {
            "usage_export_job_id": JOB_ID,
            "state": "completed",
            "download_urls": ["https://x/a?sig=1", "https://x/b?sig=2"],
        }
    )
    assert job.start is None and job.end is None
    assert len(job.download_urls or ()) == 2


def test_completed_without_urls_parses_as_no_links() -> None:
    job = parse_export_job(
        {"usage_export_job_id": JOB_ID, "state": "completed", "download_urls": None}
    )
    assert job.state is ExportState.COMPLETED and job.download_urls is None


@pytest.mark.parametrize("reason", [None, ""])
def test_absent_and_empty_error_reason_are_the_same(reason: str | None) -> None:
    body = {"usage_export_job_id": JOB_ID, "state": "failed", "download_urls": None}
    if reason is not None:
        body["error_reason"] = reason
    assert parse_export_job(body).error_reason is None


def test_urls_are_not_in_repr() -> None:
    job = parse_export_job(
        {
            "usage_export_job_id": JOB_ID,
            "state": "completed",
            "download_urls": ["https://s3/x?X-Amz-Signature=secret"],
        }
    )
    assert "secret" not in repr(job)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected a JSON object"),
        ({"state": "created", "download_urls": None}, "no usage_export_job_id"),
        (
            {"usage_export_job_id": JOB_ID, "state": "queued", "download_urls": None},
            "unknown state 'queued'",
        ),
        (
            {"usage_export_job_id": JOB_ID, "state": "completed", "download_urls": "https://x"},
            "not a list",
        ),
        (
            {
                "usage_export_job_id": JOB_ID,
                "state": "created",
                "start": "yesterday",
                "download_urls": None,
            },
            "not RFC 3339",
        ),
    ],
)
def test_malformed_bodies_raise(body: object, message: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=message):
        parse_export_job(body)
