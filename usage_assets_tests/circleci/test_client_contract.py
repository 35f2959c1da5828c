"""The client against the simulator over real HTTP: every status code and job state."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from usage_assets.circleci import (
    ApiTransportError,
    BadRequestError,
    CorruptDownloadError,
    CreateNotSentError,
    CreateOutcomeUnknownError,
    DownloadError,
    DownloadLinkExpiredError,
    ExportState,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    UnauthorizedError,
    UsageApiClient,
    UsageApiError,
    WindowRules,
)
from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.simulator.parts import SchemaDrift
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_SHARED_ORG_ID, DEFAULT_TOKEN
from usage_assets_tests.helpers import FakeClock, wait_for_terminal

DAY = datetime(2026, 11, 10, tzinfo=UTC)
DAY_END = DAY + timedelta(days=1) - timedelta(seconds=1)


def read_rows(paths: list[Path]) -> list[list[str]]:
    rows: list[list[str]] = []
    for path in paths:
        with gzip.open(path, "rt", newline="") as handle:
            lines = handle.read().splitlines()
        assert lines[0].split(",") == list(EXPORT_COLUMN_NAMES)
        rows.extend(line.split(",") for line in lines[1:])
    return rows


def test_create_returns_created_job_with_null_urls(client: UsageApiClient) -> None:
    job = client.create_export(DAY, DAY_END)
    assert job.state is ExportState.CREATED
    assert job.download_urls is None
    assert (job.start, job.end) == (DAY, DAY_END)


def test_job_completes_with_multi_part_export_and_every_row_once(
    client: UsageApiClient, sim: SimulatorServer, tmp_path: Path, clock: FakeClock
) -> None:
    start, end = DAY, DAY + timedelta(days=3) - timedelta(seconds=1)
    created = client.create_export(start, end, shared_org_ids=[DEFAULT_SHARED_ORG_ID])
    job = wait_for_terminal(client, created.id)
    assert job.state is ExportState.COMPLETED
    assert len(job.download_urls or ()) > 2
    parts = [
        client.download(url, tmp_path / f"part{i}.csv.gz")
        for i, url in enumerate(job.download_urls or ())
    ]

    rows = read_rows([p.path for p in parts])
    expected = list(
        sim.simulator.store.usage.rows_for_window(
            (DEFAULT_ORG_ID, DEFAULT_SHARED_ORG_ID), start, end, as_of=clock.now
        )
    )
    job_id = EXPORT_COLUMN_NAMES.index("JOB_ID")
    assert len(rows) == len(expected) == sum(p.data_rows for p in parts)
    assert sorted(r[job_id] for r in rows) == sorted(r[job_id] for r in expected)
    assert len({r[job_id] for r in rows}) == len(rows)
    assert {r[0] for r in rows} == {DEFAULT_ORG_ID, DEFAULT_SHARED_ORG_ID}


def test_every_get_of_a_completed_job_mints_fresh_links(
    client: UsageApiClient, clock: FakeClock
) -> None:
    job_id = client.create_export(DAY, DAY_END).id
    first = wait_for_terminal(client, job_id)
    clock.advance(timedelta(seconds=5))
    second = client.get_export(job_id)
    assert first.download_urls and second.download_urls
    assert set(first.download_urls).isdisjoint(second.download_urls)


def test_unknown_token_is_401(sim: SimulatorServer) -> None:
    bad = UsageApiClient("not-a-real-token", DEFAULT_ORG_ID, base_url=sim.base_url)
    with bad, pytest.raises(UnauthorizedError, match="Invalid token provided") as caught:
        bad.get_export("e8235eed-f121-4ae3-9c72-2719d6572818")
    assert caught.value.status_code == 401
    assert "not-a-real-token" not in str(caught.value)


def test_unknown_org_is_404(sim: SimulatorServer, clock: FakeClock) -> None:
    other_org = "00000000-0000-4000-8000-000000000000"
    bad = UsageApiClient(DEFAULT_TOKEN, other_org, base_url=sim.base_url, clock=clock)
    with bad, pytest.raises(NotFoundError, match="Organization does not exist"):
        bad.create_export(DAY, DAY_END)


def test_unknown_job_is_404(client: UsageApiClient) -> None:
    with pytest.raises(NotFoundError, match="Usage export not found"):
        client.get_export("e8235eed-f121-4ae3-9c72-2719d6572818")


def test_server_side_window_refusal_is_400(sim: SimulatorServer, clock: FakeClock) -> None:
    # A client with looser rules than the API gets the API's own 400 back.
    loose = WindowRules(max_window=timedelta(days=60))
    with (
        UsageApiClient(
            DEFAULT_TOKEN, DEFAULT_ORG_ID, base_url=sim.base_url, clock=clock, window_rules=loose
        ) as api,
        pytest.raises(BadRequestError, match="longer than 31 days") as caught,
    ):
        api.create_export(DAY - timedelta(days=40), DAY)
    assert caught.value.status_code == 400


def test_post_quota_exhausted_is_429_with_retry_after(sim_settings, clock: FakeClock) -> None:
    sim_settings.post_quota = 2
    with (
        SimulatorServer(sim_settings) as server,
        UsageApiClient(DEFAULT_TOKEN, DEFAULT_ORG_ID, base_url=server.base_url, clock=clock) as api,
    ):
        api.create_export(DAY, DAY_END)
        clock.advance(timedelta(hours=1))
        api.create_export(DAY, DAY_END)
        with pytest.raises(RateLimitedError, match="Rate limit exceeded") as caught:
            api.create_export(DAY, DAY_END)
        # The oldest slot frees 24 h after the first POST, 23 h from now.
        assert caught.value.retry_after == pytest.approx(23 * 3600, abs=2)
        clock.advance(timedelta(hours=23, seconds=1))
        assert api.create_export(DAY, DAY_END).state is ExportState.CREATED


def test_get_rate_limit_is_429(sim_settings, clock: FakeClock) -> None:
    sim_settings.get_limit = 3
    # One attempt, as the sensor polls: waiting out Retry-After is test_client_retries.py's.
    with (
        SimulatorServer(sim_settings) as server,
        UsageApiClient(
            DEFAULT_TOKEN,
            DEFAULT_ORG_ID,
            base_url=server.base_url,
            clock=clock,
            retry=RetryPolicy(max_attempts=1),
        ) as api,
    ):
        job_id = api.create_export(DAY, DAY_END).id
        for _ in range(3):
            api.get_export(job_id)
        with pytest.raises(RateLimitedError) as caught:
            api.get_export(job_id)
        assert caught.value.retry_after is not None and caught.value.retry_after > 0
        clock.advance(timedelta(minutes=1, seconds=1))
        api.get_export(job_id)


def test_server_errors_are_retried_on_get_and_never_on_post(
    client: UsageApiClient, sim: SimulatorServer, clock: FakeClock
) -> None:
    job_id = client.create_export(DAY, DAY_END).id
    sim.settings.faults.api_error_rate = 1.0
    with pytest.raises(ServerError, match="Internal server error"):
        client.get_export(job_id)
    # The GET limiter saw every attempt: three tries for one call.
    assert sim.simulator.store.get_limiter.used(f"get:{DEFAULT_ORG_ID}", clock.now) == 3
    with pytest.raises(ServerError):
        client.create_export(DAY, DAY_END)
    assert sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, clock.now) == 2  # 1 + 1, no retry


def test_intermittent_server_errors_are_absorbed_by_retries(sim_settings, clock: FakeClock) -> None:
    with (
        SimulatorServer(sim_settings) as server,
        UsageApiClient(
            DEFAULT_TOKEN,
            DEFAULT_ORG_ID,
            base_url=server.base_url,
            clock=clock,
            retry=RetryPolicy(max_attempts=8, base_delay_seconds=0.0),
        ) as api,
    ):
        job_id = api.create_export(DAY, DAY_END).id
        server.settings.faults.api_error_rate = 0.3
        states = {api.get_export(job_id).state for _ in range(20)}
        assert states <= {ExportState.PROCESSING, ExportState.COMPLETED}


def test_failed_job_carries_error_reason(client: UsageApiClient, sim: SimulatorServer) -> None:
    sim.settings.faults.job_failure_rate = 1.0
    job = wait_for_terminal(client, client.create_export(DAY, DAY_END).id)
    assert job.state is ExportState.FAILED
    assert job.error_reason
    assert job.download_urls is None


def test_empty_export_completes_with_null_urls(
    client: UsageApiClient, sim: SimulatorServer
) -> None:
    sim.settings.faults.empty_export_rate = 1.0
    job = wait_for_terminal(client, client.create_export(DAY, DAY_END).id)
    assert job.state is ExportState.COMPLETED
    assert job.download_urls is None


def test_expired_link_is_refused_and_a_fresh_get_works(
    client: UsageApiClient, clock: FakeClock, tmp_path: Path
) -> None:
    job_id = client.create_export(DAY, DAY_END).id
    url = (wait_for_terminal(client, job_id).download_urls or ())[0]
    clock.advance(timedelta(hours=36, seconds=1))
    dest = tmp_path / "part.csv.gz"
    with pytest.raises(DownloadLinkExpiredError, match="re-read the export job") as caught:
        client.download(url, dest)
    assert "X-Amz-Signature" not in str(caught.value)
    assert not dest.exists()
    fresh = (client.get_export(job_id).download_urls or ())[0]
    assert client.download(fresh, dest).data_rows > 0


def test_tampered_link_is_refused(client: UsageApiClient, tmp_path: Path) -> None:
    url = (wait_for_terminal(client, client.create_export(DAY, DAY_END).id).download_urls or ())[0]
    tampered = url.replace("X-Amz-Expires=129600", "X-Amz-Expires=999999")
    assert tampered != url
    with pytest.raises(DownloadLinkExpiredError):
        client.download(tampered, tmp_path / "p.csv.gz")


@pytest.mark.parametrize("fault", ["corrupt_part_rate", "truncated_part_rate"])
def test_damaged_part_fails_verification_and_leaves_no_file(
    client: UsageApiClient, sim: SimulatorServer, tmp_path: Path, fault: str
) -> None:
    setattr(sim.settings.faults, fault, 1.0)
    url = (wait_for_terminal(client, client.create_export(DAY, DAY_END).id).download_urls or ())[0]
    dest = tmp_path / "part.csv.gz"
    with pytest.raises(CorruptDownloadError):
        client.download(url, dest)
    assert list(tmp_path.iterdir()) == []


def test_download_server_errors_are_retried_then_reported(
    client: UsageApiClient, sim: SimulatorServer, tmp_path: Path
) -> None:
    url = (wait_for_terminal(client, client.create_export(DAY, DAY_END).id).download_urls or ())[0]
    sim.settings.faults.download_error_rate = 1.0
    with pytest.raises(DownloadError, match="HTTP 500"):
        client.download(url, tmp_path / "p.csv.gz")
    sim.settings.faults.download_error_rate = 0.0
    assert client.download(url, tmp_path / "p.csv.gz").data_rows > 0


def test_slow_download_still_arrives_whole(
    client: UsageApiClient, sim: SimulatorServer, tmp_path: Path
) -> None:
    url = (wait_for_terminal(client, client.create_export(DAY, DAY_END).id).download_urls or ())[0]
    sim.settings.faults.download_bytes_per_second = 20_000
    part = client.download(url, tmp_path / "p.csv.gz")
    assert part.compressed_bytes == part.path.stat().st_size
    assert part.data_rows == len(read_rows([part.path]))


def test_schema_drift_reaches_the_file(
    client: UsageApiClient, sim: SimulatorServer, tmp_path: Path
) -> None:
    sim.settings.faults.schema_drift = SchemaDrift(
        extra_columns=("IS_DEFAULT_BRANCH",), missing_columns=("VCS_URL",)
    )
    url = (wait_for_terminal(client, client.create_export(DAY, DAY_END).id).download_urls or ())[0]
    part = client.download(url, tmp_path / "p.csv.gz")
    with gzip.open(part.path, "rt") as handle:
        header = handle.readline().strip().split(",")
    assert "IS_DEFAULT_BRANCH" in header and "VCS_URL" not in header


def test_unreachable_api_get_is_transport_error_and_post_is_not_sent(clock: FakeClock) -> None:
    with SimulatorServer() as server:
        dead_url = server.base_url  # closed once the block exits
    with UsageApiClient(
        DEFAULT_TOKEN,
        DEFAULT_ORG_ID,
        base_url=dead_url,
        clock=clock,
        retry=RetryPolicy(max_attempts=2, base_delay_seconds=0.0),
    ) as api:
        with pytest.raises(ApiTransportError, match="ConnectError"):
            api.get_export("e8235eed-f121-4ae3-9c72-2719d6572818")
        # A refused connection means nothing was sent: no job, no quota spent.
        with pytest.raises(CreateNotSentError, match="was not sent"):
            api.create_export(DAY, DAY_END)


def test_a_token_httpx_will_not_send_is_not_sent(sim: SimulatorServer, clock: FakeClock) -> None:
    """A stray carriage return (a CRLF .env file) makes httpx refuse the header before sending."""
    with (
        UsageApiClient(
            DEFAULT_TOKEN + "\r", DEFAULT_ORG_ID, base_url=sim.base_url, clock=clock
        ) as api,
        pytest.raises(CreateNotSentError, match="was not sent") as caught,
    ):
        api.create_export(DAY, DAY_END)
    assert DEFAULT_TOKEN not in str(caught.value)
    assert sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, clock.now) == 0


def test_a_post_sent_but_never_answered_is_outcome_unknown(clock: FakeClock) -> None:
    """The request reached a server that dropped it without an answer: the job may exist."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def swallow() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()

    worker = threading.Thread(target=swallow, daemon=True)
    worker.start()
    host, port = listener.getsockname()[:2]
    try:
        with (
            UsageApiClient(
                DEFAULT_TOKEN, DEFAULT_ORG_ID, base_url=f"http://{host}:{port}/api/v2", clock=clock
            ) as api,
            pytest.raises(CreateOutcomeUnknownError, match="may have been created"),
        ):
            api.create_export(DAY, DAY_END)
    finally:
        worker.join(timeout=10)
        listener.close()


def test_secrets_stay_out_of_reprs_errors_and_logs(
    client: UsageApiClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    caplog.set_level(logging.DEBUG)
    job = wait_for_terminal(client, client.create_export(DAY, DAY_END).id)
    url = (job.download_urls or ())[0]
    signature = httpx.URL(url).params["X-Amz-Signature"]
    client.download(url, tmp_path / "ok.csv.gz")
    clock.advance(timedelta(days=2))
    with pytest.raises(UsageApiError) as caught:
        client.download(url, tmp_path / "expired.csv.gz")

    exposed = [repr(job), repr(client), str(caught.value), caplog.text]
    for text in exposed:
        assert DEFAULT_TOKEN not in text
        assert signature not in text
    assert "REDACTED" in caplog.text  # the download request was logged, without its query
