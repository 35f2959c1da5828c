"""Test helpers shared across modules (fixtures live in conftest.py)."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from usage_assets.circleci import ExportJob, UsageApiClient


class FakeClock:
    """A settable "now", shared by the simulator and the client so tests can jump in time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def wait_for_terminal(client: UsageApiClient, job_id: str, timeout: float = 30.0) -> ExportJob:
    """Poll until the job completes or fails (the simulator writes files in a worker thread)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get_export(job_id)
        if job.state.is_terminal:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"export {job_id} still {job.state.value} after {timeout} s")
        time.sleep(0.02)


@contextmanager
def small_disk(path: Path, size: str = "4m", *, read_only: bool = False) -> Iterator[Path]:
    """A real, small file system (tmpfs) mounted at `path`, for "disk full" faults.

    Mounting needs root, which CI has; elsewhere the test is skipped, never faked. Under CI a
    failed mount fails the test, so a fault test cannot pass by not running."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={size}" + (",ro" if read_only else ""),
            "tmpfs",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(folder: Path) -> Path:
    """Write zeros into `folder` until its file system has no space left; the filler file."""
    filler = folder / "filler.bin"
    block = b"\0" * 65536
    handle = filler.open("wb")
    try:
        while True:
            handle.write(block)
            handle.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        with suppress(OSError):  # the last buffered bytes may not fit either
            handle.close()
    return filler
