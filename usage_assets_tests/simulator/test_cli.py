"""The simulator as a user starts it: the console script on a chosen port, driven with curl the way
CircleCI's own support scripts drive the real API.

Every expectation is derived from what the simulator generates for the chosen window (the same
seeded generator, run in the test), never from a volume that depends on the weekday."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import httpx
import pytest

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.dev.local_stack import free_port
from usage_assets.simulator.cli import build_parser, settings_from_args
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN, Faults, SimulatorSettings
from usage_assets.simulator.synthetic import SyntheticUsage

SCRIPT = Path(sys.executable).parent / "usage-api-simulator"
SUPPORT_SCRIPT = Path(__file__).resolve().parents[1] / "fixtures" / "circleci_support_export.sh"
# CI installs curl and jq (.ci/run); there a missing tool is a failure, not a skip.
TOOLS_MISSING = [tool for tool in ("curl", "jq", "gunzip") if shutil.which(tool) is None]
needs_tools = pytest.mark.skipif(
    bool(TOOLS_MISSING) and os.environ.get("CI") != "true",
    reason=f"not installed: {', '.join(TOOLS_MISSING)}",
)
# The simulator's deterministic catalogue; LAST_BUILD_FINISHED_AT is the one column computed at
# export time (as in the real exports), so rows are compared without it.
EXPORT_TIME_COLUMN = EXPORT_COLUMN_NAMES.index("LAST_BUILD_FINISHED_AT")


class Served:
    """A running console script: its API base URL and what it printed at start-up."""

    def __init__(self, api_url: str, banner: str) -> None:
        self.api_url = api_url
        self.banner = banner


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Served:
        port = free_port()
        process = subprocess.Popen(
            [str(SCRIPT), "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        root = f"http://127.0.0.1:{port}"
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
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(4))
        return Served(f"{root}/api/v2", banner)

    yield start
    for process in processes:
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


def whole_days(first: datetime, days: int) -> tuple[datetime, datetime]:
    """[first 00:00:00Z, last 23:59:59Z] for `days` calendar days, the windows CircleCI's scripts send."""
    start = datetime.combine(first.date(), clock_time(0), tzinfo=UTC)
    return start, start + timedelta(days=days) - timedelta(seconds=1)


def generated_rows(
    start: datetime, end: datetime, *, rows_per_day: int, seed: int = SimulatorSettings.seed
) -> list[tuple[str, ...]]:
    """What the simulator generates for the window, without its export-time column.

    The window ends at least a day before now, so no job run is still running "as of" the export
    and the rows do not depend on the export's exact moment."""
    usage = SyntheticUsage(seed=seed, rows_per_day=rows_per_day)
    rows = usage.rows_for_window((DEFAULT_ORG_ID,), start, end, as_of=datetime.now(UTC))
    return [row[:EXPORT_TIME_COLUMN] + row[EXPORT_TIME_COLUMN + 1 :] for row in rows]


def without_export_time(line: str) -> tuple[str, ...]:
    values = tuple(line.split(","))
    return values[:EXPORT_TIME_COLUMN] + values[EXPORT_TIME_COLUMN + 1 :]


def test_the_banner_prints_what_the_readme_curl_lines_need(serve: Callable[..., Served]) -> None:
    served = serve()
    assert f"CIRCLECI_API_URL={served.api_url}" in served.banner
    assert f"token (Circle-Token header): {DEFAULT_TOKEN}" in served.banner
    assert DEFAULT_ORG_ID in served.banner


@needs_tools
def test_a_curl_script_from_the_docs_works_unchanged_but_for_the_host(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    rows_per_day, rows_per_part = 60, 10
    served = serve(
        "--processing-seconds", "0", "--rows-per-day", str(rows_per_day),
        "--rows-per-part", str(rows_per_part),
    )  # fmt: skip
    # Seven whole days hold five weekdays whatever today is, so the export spans several parts.
    start, end = whole_days(datetime.now(UTC) - timedelta(days=9), 7)
    expected = generated_rows(start, end, rows_per_day=rows_per_day)
    assert len(expected) > rows_per_part, "the window must span more than one part"
    created = curl(
        "-X",
        "POST",
        f"{served.api_url}/organizations/{DEFAULT_ORG_ID}/usage_export_job",
        "-H",
        f"Circle-Token: {DEFAULT_TOKEN}",
        "-H",
        "Content-Type: application/json",
        "--data",
        json.dumps({"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}"}),
    )
    assert created["state"] == "created" and created["download_urls"] is None
    job_url = f"{served.api_url}/organizations/{DEFAULT_ORG_ID}/usage_export_job/{created['usage_export_job_id']}"
    for _ in range(100):
        status = curl(job_url, "-H", f"Circle-Token: {DEFAULT_TOKEN}")
        if status["state"] == "completed":
            break
        time.sleep(0.1)
    urls = status["download_urls"]
    assert isinstance(urls, list) and len(urls) == math.ceil(len(expected) / rows_per_part)
    lines: list[str] = []
    for index, url in enumerate(urls):
        target = tmp_path / f"part{index}.csv.gz"
        subprocess.run(["curl", "--silent", "--fail", "-o", str(target), url], check=True)
        data = subprocess.run(
            ["gunzip", "-c", str(target)], capture_output=True, text=True, check=True
        ).stdout
        part_lines = data.splitlines()
        assert part_lines[0] == ",".join(EXPORT_COLUMN_NAMES)
        lines.extend(part_lines[1:])
    assert sorted(map(without_export_time, lines)) == sorted(expected)


@needs_tools
def test_circleci_support_export_script_gets_every_row_once_with_default_settings(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """CircleCI-Support's script: POST, an immediate GET, polling only while `processing`, every
    part downloaded with curl -L, gunzipped and concatenated under one header."""
    served = serve()  # the console script's defaults, as a user starts it
    defaults = SimulatorSettings()
    # 31 whole days ending two days ago: the longest window the script's users send, and enough
    # rows for several parts at the default part size on any date.
    start, end = whole_days(datetime.now(UTC) - timedelta(days=32), 31)
    expected = generated_rows(start, end, rows_per_day=defaults.rows_per_day)
    assert len(expected) > defaults.rows_per_part, "the window must span more than one part"
    out = tmp_path / "export"
    result = subprocess.run(
        ["bash", str(SUPPORT_SCRIPT)],
        env={
            **os.environ,
            "API_URL": served.api_url,
            "ORG_ID": DEFAULT_ORG_ID,
            "CIRCLE_TOKEN": DEFAULT_TOKEN,
            "START": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "END": f"{end:%Y-%m-%dT%H:%M:%SZ}",
            "OUTPUT_DIR": str(out),
            "POLL_SECONDS": "1",
            "MAX_ATTEMPTS": "60",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    states = [
        line.removeprefix("Job state: ")
        for line in result.stdout.splitlines()
        if line.startswith("Job state: ")
    ]
    # The first GET follows the POST at once: it must already say `processing`, or the script
    # would stop there.
    assert states[0] == "processing" and states[-1] == "completed"
    assert set(states[:-1]) == {"processing"}
    parts = sorted(out.glob("part*.csv.gz"))
    assert len(parts) == math.ceil(len(expected) / defaults.rows_per_part) >= 2
    header, *rows = (out / "combined.csv").read_text().splitlines()
    assert header == ",".join(EXPORT_COLUMN_NAMES)
    assert sorted(map(without_export_time, rows)) == sorted(expected)


def test_the_file_dialect_flag_sets_the_setting() -> None:
    parser = build_parser()
    assert settings_from_args(parser.parse_args([])).faults.file_dialect == "2024"
    chosen = settings_from_args(parser.parse_args(["--file-dialect", "2026"]))
    assert chosen.faults.file_dialect == "2026"
    with pytest.raises(SystemExit):
        parser.parse_args(["--file-dialect", "2025"])
    with pytest.raises(ValueError, match="file_dialect"):
        Faults(file_dialect="2025")
