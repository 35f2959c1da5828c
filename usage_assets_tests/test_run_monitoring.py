"""A run worker killed while it holds the `usage_warehouse_writer` slot does not block later loads.

Real stack (simulator + `dagster dev` with the repository's dagster.yaml, copied into DAGSTER_HOME
by `local_stack`). Two loads are started from one backfill of two separate days (two exports, so
the sensor launches two download runs). The test holds the DuckDB file's write lock first, so
whichever load takes the pool slot first sits in `job_runs`, slot held, retrying to open the
file; the other waits for the slot. The first one's run worker is then SIGKILLed. Without
`run_monitoring` in dagster.yaml its slot is never given back and the second load waits forever;
with it, the daemon frees the slot shortly after the code server marks the killed run failed,
and the second load completes on its own.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import dagster as dg
import duckdb
import pytest
from dagster._core.events import DagsterEventType

from usage_assets.defs.constants import WAREHOUSE_POOL
from usage_assets.defs.usage.jobs import download_and_load_usage
from usage_assets.dev.local_stack import LocalStack, local_stack
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import SimulatorSettings

# From the kill to the second load's success: the code server notices the dead worker within a
# second, the daemon frees the slot within poll_interval_seconds + free_slots_after_run_end_seconds
# (10 + 10 in dagster.yaml), the waiting step re-tries its claim at most every 15 s, then it loads
# a day and rebuilds the insights. Without monitoring it never completes.
RECOVERY_BOUND_SECONDS = 90.0

T = TypeVar("T")


def _slot_holder(instance: dg.DagsterInstance, pool: str) -> tuple[str, str] | None:
    """(run id, step key) of the step holding `pool`'s slot, if any."""
    claimed = instance.event_log_storage.get_concurrency_info(pool).claimed_slots
    return (claimed[0].run_id, claimed[0].step_key) if claimed else None


def _wait_for(what: str, timeout: float, probe: Callable[[], T | None], stack: LocalStack) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if stack.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited; see {stack.log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not seen within {timeout:.0f} s; see {stack.log_path}")
        time.sleep(0.2)


def _finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.is_finished else None


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The process executing the run's steps, as the in-process executor reports it, checked to
    be alive and a Python process before anyone signals it."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = event.engine_event_data if event is not None else None
        if data is not None and "pid" in data.metadata and "in process" in record.message:
            pid = int(str(data.metadata["pid"].value))
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert b"python" in cmdline, cmdline
            return pid
    raise AssertionError(f"run {run_id} reported no run worker pid")


@pytest.mark.timeout(300)
def test_a_killed_load_gives_its_warehouse_slot_back(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    # Weekdays: the simulator's weekends can be empty, and each load must bring rows. The first and
    # third weekday back are never adjacent: two runs, two exports.
    weekdays = [d for d in (today - timedelta(days=n) for n in range(3, 14)) if d.weekday() < 5]
    days = [weekdays[2].isoformat(), weekdays[0].isoformat()]
    settings = SimulatorSettings(
        processing_time=timedelta(seconds=1), rows_per_day=15, rows_per_part=150
    )
    with SimulatorServer(settings) as sim, local_stack(tmp_path, simulator=sim) as stack:
        warehouse = stack.data_dir / "usage.duckdb"
        blocker = duckdb.connect(str(warehouse))  # the write lock: loads wait inside job_runs
        try:
            with stack.instance() as instance:
                # Days not adjacent: two runs, two exports, so two download runs.
                stack.launch_backfill("usage_export_job", days)
                holder = _wait_for(
                    "a job_runs step holding the warehouse slot",
                    180,
                    lambda: _slot_holder(instance, WAREHOUSE_POOL),
                    stack,
                )
                killed_run_id, step_key = holder
                assert step_key == "job_runs"
                killed_run = instance.get_run_by_id(killed_run_id)
                assert killed_run is not None
                assert killed_run.job_name == download_and_load_usage.name
                # The other load, waiting for that slot.
                other_run_id = _wait_for(
                    "the second download run",
                    120,
                    lambda: (
                        [
                            r.run_id
                            for r in instance.get_runs(
                                filters=dg.RunsFilter(job_name=download_and_load_usage.name)
                            )
                            if r.run_id != killed_run_id
                        ]
                        or None
                    ),
                    stack,
                )[0]

                os.kill(_run_worker_pid(instance, killed_run_id), signal.SIGKILL)
                killed_at = time.monotonic()
                blocker.close()  # the warehouse is free again; only the slot can block now

                killed = _wait_for(
                    "the killed run marked failed",
                    60,
                    lambda: _finished(instance, killed_run_id),
                    stack,
                )
                assert killed.status == dg.DagsterRunStatus.FAILURE
                done = _wait_for(
                    "the second load finished",
                    RECOVERY_BOUND_SECONDS,
                    lambda: _finished(instance, other_run_id),
                    stack,
                )
                recovered_after = time.monotonic() - killed_at
                assert done.status == dg.DagsterRunStatus.SUCCESS, f"see {stack.log_path}"
                assert _slot_holder(instance, WAREHOUSE_POOL) is None
                print(f"second load done {recovered_after:.1f} s after the kill")
        finally:
            blocker.close()
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            (loaded_days,) = conn.execute(
                "SELECT count(DISTINCT usage_date) FROM circleci.job_runs"
            ).fetchone() or (0,)
        assert loaded_days == 1  # the second load's day; the killed one wrote nothing
