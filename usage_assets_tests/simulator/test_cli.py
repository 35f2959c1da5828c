"""The simulator as a user starts it: the console script on a chosen port, driven with curl the way
CircleCI's own support scripts drive the real API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from usage_assets.local_stack import free_port
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN

SCRIPT = Path(sys.executable).parent / "usage-api-simulator"


@pytest.fixture
def served() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(SCRIPT),
            "--port",
            str(port),
            "--processing-seconds",
            "0",
            "--rows-per-day",
            "60",
            "--rows-per-part",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{root}/_simulator/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
        yield f"{root}/api/v2"
    finally:
        process.terminate()
        process.wait(timeout=10)


def curl(*args: str) -> dict[str, object]:
    out = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail-with-body", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_a_curl_script_from_the_docs_works_unchanged_but_for_the_host(
    served: str, tmp_path: Path
) -> None:
    day = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d")
    created = curl(
        "-X",
        "POST",
        f"{served}/organizations/{DEFAULT_ORG_ID}/usage_export_job",
        "-H",
        f"Circle-Token: {DEFAULT_TOKEN}",
        "-H",
        "Content-Type: application/json",
        "--data",
        json.dumps({"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z"}),
    )
    assert created["state"] == "created" and created["download_urls"] is None
    job_url = (
        f"{served}/organizations/{DEFAULT_ORG_ID}/usage_export_job/{created['usage_export_job_id']}"
    )
    for _ in range(100):
        status = curl(job_url, "-H", f"Circle-Token: {DEFAULT_TOKEN}")
        if status["state"] == "completed":
            break
        time.sleep(0.1)
    urls = status["download_urls"]
    assert isinstance(urls, list) and len(urls) >= 2
    lines: list[str] = []
    for index, url in enumerate(urls):
        target = tmp_path / f"part{index}.csv.gz"
        subprocess.run(["curl", "--silent", "--fail", "-o", str(target), url], check=True)
        data = subprocess.run(
            ["gunzip", "-c", str(target)], capture_output=True, text=True, check=True
        ).stdout
        part_lines = data.splitlines()
        assert part_lines[0].startswith("ORGANIZATION_ID,ORGANIZATION_NAME")
        lines.extend(part_lines[1:])
    assert len(lines) == len(set(lines)) > 0
