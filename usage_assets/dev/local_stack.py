"""Run the whole product locally, the way a user does: the simulator, then `dagster dev` (webserver
and daemon) on a persistent DAGSTER_HOME, driven through the webserver's GraphQL API exactly as the
UI's "Materialize" / backfill dialog drives it.

Used by `make demo` and by the end-to-end test, so both exercise the real sensor, backfill daemon,
run queue and pools rather than an in-process shortcut.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
from dagster._core.execution.backfill import BulkActionStatus

from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]

_LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DagsterStack:
    """A running simulator and Dagster webserver, and the environment they share: what the demo and
    the tests drive, whichever processes serve it (`LocalStack`: one `dagster dev`;
    `production_stack.ProductionStack`: code server, webserver and daemon apart)."""

    simulator: SimulatorServer
    dagster_home: Path
    data_dir: Path
    webserver_url: str
    env: dict[str, str]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL request to the webserver, as the UI sends it; returns its `data`."""
        response = httpx.post(
            f"{self.webserver_url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return dict(body["data"])

    def launch_backfill(self, asset: str, partition_keys: Sequence[str]) -> str:
        """What the UI's backfill dialog sends: the asset and the chosen partitions."""
        params = {
            "partitionNames": list(partition_keys),
            "assetSelection": [{"path": [asset]}],
            "fromFailure": False,
        }
        result = self.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill launch refused: {result}")
        return str(result["backfillId"])

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.instance() as instance:
            while True:
                backfill = instance.get_backfill(backfill_id)
                if backfill is not None and backfill.status in (
                    BulkActionStatus.COMPLETED_SUCCESS,
                    BulkActionStatus.COMPLETED,
                ):
                    return
                if backfill is not None and backfill.status in (
                    BulkActionStatus.FAILED,
                    BulkActionStatus.CANCELED,
                    BulkActionStatus.COMPLETED_FAILED,
                ):
                    raise RuntimeError(f"backfill {backfill_id} ended {backfill.status.value}")
                self._check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"backfill {backfill_id} not done after {timeout:.0f} s")
                time.sleep(1)

    def wait_for_runs(
        self, job_name: str, count: int, timeout: float, *, created_after: datetime | None = None
    ) -> list[dg.DagsterRun]:
        """Wait until `count` runs of `job_name` (created after `created_after`) exist and all of
        them have finished successfully."""
        deadline = time.monotonic() + timeout
        with self.instance() as instance:
            while True:
                runs = instance.get_runs(
                    filters=dg.RunsFilter(job_name=job_name, created_after=created_after)
                )
                failed = [
                    r
                    for r in runs
                    if r.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
                ]
                if failed:
                    raise RuntimeError(
                        f"run {failed[0].run_id} of {job_name} ended {failed[0].status.value}; "
                        f"see the Dagster UI or {self.logs_hint()}"
                    )
                done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
                if len(done) >= count and len(done) == len(runs):
                    return done
                self._check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{len(done)}/{count} runs of {job_name} done after {timeout:.0f} s"
                    )
                time.sleep(1)

    def wait_until(self, what: str, probe: Callable[[], bool], timeout: float) -> None:
        """Poll `probe` until it is true; fails early if the stack's processes died."""
        deadline = time.monotonic() + timeout
        while not probe():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not after {timeout:.0f} s; see {self.logs_hint()}")
            time.sleep(0.5)

    def _check_alive(self) -> None:
        """Raise if a process serving the stack has exited (the waits would only time out)."""
        raise NotImplementedError

    def logs_hint(self) -> str:
        """Where the stack's process logs are, for error messages."""
        raise NotImplementedError


@dataclass
class LocalStack(DagsterStack):
    """A running simulator + `dagster dev`, and the environment they share."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"dagster dev exited ({self.process.returncode}); see {self.log_path}"
            )

    def logs_hint(self) -> str:
        return str(self.log_path)


def wait_for_webserver(
    url: str, check_alive: Callable[[], None], logs_hint: str, timeout: float
) -> None:
    """Until the webserver at `url` answers; `check_alive` raises if what serves it has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive()
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(
        f"the Dagster webserver did not answer on {url} within {timeout:.0f} s; see {logs_hint}"
    )


def schedule_hours_clear_of(now: datetime) -> dict[str, str]:
    """Settings that put the daily and weekly schedules 12 hours away from `now`.

    The schedules run by default, so a stack that happens to be up at 06:00 UTC (or 07:00 on a
    Sunday) would get an extra export run and spend a POST nobody launched: the demo's and the
    tests' counts would then depend on the time of day they ran at."""
    hour = str((now.astimezone(UTC).hour + 12) % 24)
    return {"USAGE_DAILY_SCHEDULE_HOUR": hour, "USAGE_WEEKLY_SCHEDULE_HOUR": hour}


def prepare_home(work_dir: Path, instance_file: Path) -> tuple[Path, Path]:
    """DAGSTER_HOME (holding a copy of `instance_file` as its dagster.yaml) and USAGE_DATA_DIR,
    both under `work_dir`."""
    dagster_home = work_dir / "dagster_home"
    data_dir = work_dir / "data"
    dagster_home.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(instance_file, dagster_home / "dagster.yaml")
    return dagster_home, data_dir


def stack_env(
    dagster_home: Path,
    data_dir: Path,
    simulator: SimulatorServer,
    sensor_interval_seconds: int,
    extra_env: dict[str, str] | None,
) -> dict[str, str]:
    """The environment every Dagster process of a stack gets: the simulator as CircleCI, the data
    folder, a quick sensor, and the schedules moved clear of the next hours (unless `extra_env`
    sets their hours), so the only runs are the ones the caller launches."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CIRCLECI_TOKEN": DEFAULT_TOKEN,
        "CIRCLECI_ORG_ID": DEFAULT_ORG_ID,
        "CIRCLECI_API_URL": simulator.base_url,
        "USAGE_DATA_DIR": str(data_dir),
        "USAGE_SENSOR_INTERVAL_SECONDS": str(sensor_interval_seconds),
        **schedule_hours_clear_of(datetime.now(UTC)),
        **(extra_env or {}),
    }


@contextmanager
def local_stack(
    work_dir: Path,
    *,
    simulator: SimulatorServer,
    sensor_interval_seconds: int = 3,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[LocalStack]:
    """Start `dagster dev` against `simulator`, with DAGSTER_HOME and data under `work_dir`.

    The schedules are moved clear of the next hours (`schedule_hours_clear_of`) unless
    `extra_env` sets their hours, so the only runs are the ones the caller launches."""
    dagster_home, data_dir = prepare_home(work_dir, REPO_ROOT / "dagster.yaml")
    port = free_port()
    env = stack_env(dagster_home, data_dir, simulator, sensor_interval_seconds, extra_env)
    log_path = work_dir / "dagster_dev.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole tree (webserver, daemon, code server) stops together
        )
    url = f"http://127.0.0.1:{port}"
    try:
        stack = LocalStack(simulator, dagster_home, data_dir, url, env, process, log_path)
        wait_for_webserver(url, stack._check_alive, str(log_path), startup_timeout)
        yield stack
    finally:
        stop_session(process)


def stop_session(process: subprocess.Popen[bytes]) -> None:
    """Stop `process` and its whole session (it was started with start_new_session)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
