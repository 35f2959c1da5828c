"""`make bench` section: window loads with 1, 2 and 4 concurrent writer processes on a DuckLake,
against the single DuckDB file (one writer: the pool serialises its loads), and the time of one
aggregate query over job_runs on each.

Two passes per setting: a backfill (every window empty, loads only insert) and a reload (every
window replaced, so concurrent loads delete from the same table and DuckLake makes all but one
of each round run again). Every worker is a process of its own, as run workers are.
Run alone with `python -m bench.run --lake-only`.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import duckdb

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.ingest.lake import LakeLocation, connect_lake, day_locks
from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG, load_window
from usage_assets.simulator.synthetic import SyntheticUsage

ORG_ID = "b9291e0d-a11e-41fb-8517-c545388b5953"
FIRST_DAY = date(2026, 9, 1)
DAYS_PER_WINDOW = 4
WRITERS = (1, 2, 4)
AGGREGATE = (
    "SELECT resource_class, count(*), sum(total_credits), avg(job_run_seconds)"
    " FROM circleci.job_runs GROUP BY resource_class ORDER BY resource_class"
)

Window = tuple[str, date, date, Path]  # export id, first day, last day, its part


def write_windows(folder: Path, windows: int, rows_per_day: int) -> list[Window]:
    """`windows` consecutive windows of DAYS_PER_WINDOW days, one gzip CSV part each."""
    import gzip

    usage = SyntheticUsage(rows_per_day=rows_per_day)
    out: list[Window] = []
    for index in range(windows):
        first = FIRST_DAY + timedelta(days=index * DAYS_PER_WINDOW)
        last = first + timedelta(days=DAYS_PER_WINDOW - 1)
        path = folder / f"window_{index:02d}.csv.gz"
        with gzip.open(path, "wt") as part:
            part.write(",".join(EXPORT_COLUMN_NAMES) + "\n")
            day = first
            while day <= last:
                for row in usage.rows_for_day(ORG_ID, day):
                    part.write(",".join(row) + "\n")
                day += timedelta(days=1)
        out.append((f"export-{index:02d}", first, last, path))
    return out


def _connect(target: str | LakeLocation) -> duckdb.DuckDBPyConnection:
    if isinstance(target, LakeLocation):
        return connect_lake(target, config=WAREHOUSE_DUCKDB_CONFIG)
    return duckdb.connect(target, config=dict(WAREHOUSE_DUCKDB_CONFIG))


def _writer(
    target: str | LakeLocation,
    jobs: Queue[Window | None],
    barrier: Barrier,
    staging: Path,
    created_at: datetime,
    results: Queue[dict[str, Any]],
) -> None:
    """Worker process: take windows off the queue and load each, until told to stop."""
    conn = _connect(target)
    lake = target if isinstance(target, LakeLocation) else None
    conflicts = 0

    def count(attempt: int, delay: float, exc: BaseException) -> None:
        nonlocal conflicts
        conflicts += 1

    barrier.wait(timeout=600)  # a writer that failed to connect breaks it: no hang
    loads = 0
    while (job := jobs.get()) is not None:
        export_id, first, last, part = job
        load_window(
            conn, [(export_id, part)], window_start=first, window_end=last,
            run_id=f"bench-{export_id}-{created_at.timestamp()}", export_job_id=export_id,
            export_created_at=created_at, staging_dir=staging,
            window_lock=(lambda a, b: day_locks(lake.catalog_url, a, b)) if lake else None,
            on_conflict=count,
        )  # fmt: skip
        loads += 1
    conn.close()
    results.put({"loads": loads, "conflicts": conflicts})


def timed_pass(
    target: str | LakeLocation, windows: list[Window], writers: int, staging: Path
) -> dict[str, Any]:
    """Load every window once with `writers` processes; wall time from the moment all are ready."""
    spawn = multiprocessing.get_context("spawn")
    jobs: Queue[Window | None] = spawn.Queue()
    results: Queue[dict[str, Any]] = spawn.Queue()
    barrier = spawn.Barrier(writers + 1)
    created_at = datetime.now(UTC)
    procs = [
        spawn.Process(target=_writer, args=(target, jobs, barrier, staging, created_at, results))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    for window in windows:
        jobs.put(window)
    for _ in procs:
        jobs.put(None)
    barrier.wait(timeout=600)
    started = time.perf_counter()
    outcomes = [results.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - started
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a bench writer failed (exit {proc.exitcode})")
    return {
        "wall_s": round(wall, 2),
        "conflicts_retried": sum(o["conflicts"] for o in outcomes),
    }


def check_and_query(target: str | LakeLocation, expected_rows: int) -> dict[str, Any]:
    """One row per job run, then the aggregate query's median time over 5 runs."""
    conn = _connect(target)
    try:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT job_id) FROM circleci.job_runs"
        ).fetchone() or (0, 0)
        if not total == distinct == expected_rows:
            raise AssertionError(f"{total} rows, {distinct} job ids, {expected_rows} expected")
        times = []
        for _ in range(5):
            started = time.perf_counter()
            conn.execute(AGGREGATE).fetchall()
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return {"aggregate_query_s": round(statistics.median(times), 3)}


def bench_lake(server_url: str, *, windows: int = 12, rows_per_day: int = 5000) -> dict[str, Any]:
    """The section's figures; `server_url` is a PostgreSQL server whose user may CREATE DATABASE."""
    from usage_assets_tests.postgres import with_database

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        folder = Path(tmp)
        parts = folder / "parts"
        parts.mkdir()
        all_windows = write_windows(parts, windows, rows_per_day)
        expected = sum(
            sum(1 for _ in SyntheticUsage(rows_per_day=rows_per_day).rows_for_day(ORG_ID, day))
            for _, first, last, _ in all_windows
            for day in (first + timedelta(days=i) for i in range((last - first).days + 1))
        )
        settings: list[tuple[str, int]] = [("duckdb_file", 1)] + [("ducklake", n) for n in WRITERS]
        for backend, writers in settings:
            case = folder / f"{backend}_{writers}"
            case.mkdir()
            target: str | LakeLocation
            name = f"bench_lake_{writers}_{int(time.time())}"
            if backend == "duckdb_file":
                target = str(case / "usage.duckdb")
            else:
                _admin(server_url, f'CREATE DATABASE "{name}"')
                target = LakeLocation(with_database(server_url, name), f"{case / 'data'}/")
            try:
                backfill = timed_pass(target, all_windows, writers, case / "staging")
                reload = timed_pass(target, all_windows, writers, case / "staging")
                queried = check_and_query(target, expected)
            finally:
                if backend != "duckdb_file":
                    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            results.append(
                {
                    "backend": backend,
                    "writers": writers,
                    "windows": windows,
                    "rows": expected,
                    "backfill_wall_s": backfill["wall_s"],
                    "backfill_conflicts_retried": backfill["conflicts_retried"],
                    "reload_wall_s": reload["wall_s"],
                    "reload_conflicts_retried": reload["conflicts_retried"],
                    **queried,
                }
            )
    return {"days_per_window": DAYS_PER_WINDOW, "rows_per_day": rows_per_day, "runs": results}


def _admin(server_url: str, statement: str) -> None:
    import psycopg2

    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(statement)
    finally:
        admin.close()


def print_lake(section: dict[str, Any]) -> None:
    print()
    print(
        f"Warehouse writers: {section['runs'][0]['windows']} windows of "
        f"{section['days_per_window']} days, {section['runs'][0]['rows']} rows in all"
    )
    print(
        f"{'backend':<13}{'writers':>8}{'backfill s':>12}{'retries':>9}{'reload s':>10}"
        f"{'retries':>9}{'aggregate s':>13}"
    )
    for run in section["runs"]:
        print(
            f"{run['backend']:<13}{run['writers']:>8}{run['backfill_wall_s']:>12.2f}"
            f"{run['backfill_conflicts_retried']:>9}{run['reload_wall_s']:>10.2f}"
            f"{run['reload_conflicts_retried']:>9}{run['aggregate_query_s']:>13.3f}"
        )
