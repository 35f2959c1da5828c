"""Several processes loading one DuckLake at once, and a read-only reader beside them.

Processes, not threads: DuckDB and Dagster in one process are not what a deployment runs, and a
real deployment's loads are separate run workers. Each worker opens its own lake connection and
loads one window with the day locks and conflict retries the job_runs asset uses.
"""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import UTC, date, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import duckdb
import pytest

from usage_assets.ingest.lake import LakeLocation, connect_lake, day_locks
from usage_assets.ingest.warehouse import load_window
from usage_assets_tests.ingest.test_warehouse import ORG, USAGE, write_part
from usage_assets_tests.lake import lake_at

DAYS = [date(2026, 11, 2) + timedelta(days=i) for i in range(8)]
CREATED = datetime(2026, 11, 20, tzinfo=UTC)
# (export id, first day index, last day index, minutes after CREATED the export was made)
PRELOAD = ("e0", 0, 7, 0)
CONCURRENT = [
    ("eA", 0, 2, 10),  # overlaps eB on days 1..2; eB is newer and must win them
    ("eB", 1, 3, 20),
    ("eC", 4, 5, 30),  # eC and eD are disjoint from everything
    ("eD", 6, 7, 40),
]


def _part(folder: Path, export_id: str, first: int, last: int) -> Path:
    rows = [row for day in DAYS[first : last + 1] for row in USAGE.rows_for_day(ORG, day)]
    return write_part(folder / f"{export_id}.csv.gz", rows)


def _load(
    lake: LakeLocation, export: tuple[str, int, int, int], part: Path, barrier: Barrier | None
) -> dict[str, Any]:
    """Worker: one window load, started together with the others."""
    export_id, first, last, minutes = export
    conn = connect_lake(lake)
    try:
        if barrier is not None:
            barrier.wait(timeout=120)
        conflicts: list[int] = []
        report = load_window(
            conn,
            [(export_id, part)],
            window_start=DAYS[first],
            window_end=DAYS[last],
            run_id=f"run-{export_id}",
            export_job_id=export_id,
            export_created_at=CREATED + timedelta(minutes=minutes),
            staging_dir=part.parent / "staging",
            window_lock=lambda a, b: day_locks(lake.catalog_url, a, b),
            on_conflict=lambda attempt, delay, exc: conflicts.append(attempt),
        )
        return {"rows_loaded": report.rows_loaded, "conflicts": len(conflicts)}
    finally:
        conn.close()


def _worker(lake: LakeLocation, export: Any, part: Path, barrier: Barrier, out: Any) -> None:
    try:
        out.put((export[0], _load(lake, export, part, barrier)))
    except BaseException as exc:  # reported to the test, which fails with it
        out.put((export[0], repr(exc)))


@pytest.mark.parametrize("preloaded", [True, False], ids=["replacing-rows", "empty-lake"])
def test_overlapping_and_disjoint_loads_from_four_processes_keep_each_job_run_once(
    postgres_url: str, tmp_path: Path, preloaded: bool
) -> None:
    """Replacing rows, DuckLake's conflicts make losers run again; into an empty lake two inserts
    would both commit, and only the day locks keep the overlap from doubling."""
    lake = lake_at(postgres_url, tmp_path)
    if preloaded:
        _load(lake, PRELOAD, _part(tmp_path, *PRELOAD[:3]), None)  # every day has rows
    parts = {export[0]: _part(tmp_path, *export[:3]) for export in CONCURRENT}
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(len(CONCURRENT))
    out = spawn.Queue()
    workers = [
        spawn.Process(target=_worker, args=(lake, export, parts[export[0]], barrier, out))
        for export in CONCURRENT
    ]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=300) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    failures = {name: result for name, result in results.items() if isinstance(result, str)}
    assert not failures, failures

    with connect_lake(lake, read_only=True) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT job_id) FROM circleci.job_runs"
        ).fetchone() or (0, 0)
        by_day = dict(
            conn.execute(
                "SELECT usage_date, list(DISTINCT export_job_id) FROM circleci.job_runs"
                " GROUP BY usage_date"
            ).fetchall()
        )
    expected_rows = sum(len(list(USAGE.rows_for_day(ORG, day))) for day in DAYS)
    assert total == distinct == expected_rows
    # Each day holds the newest export's rows: eA only on its own first day, eB on the overlap.
    expected_owner = ["eA", "eB", "eB", "eB", "eC", "eC", "eD", "eD"]
    assert by_day == {
        day: [owner]
        for day, owner in zip(DAYS, expected_owner, strict=True)
        if any(True for _ in USAGE.rows_for_day(ORG, day))  # a quiet day has no rows
    }
    if preloaded:
        # Every load deleted rows from the same table, so DuckLake refused some commits: they
        # ran again and still ended right.
        assert sum(result["conflicts"] for result in results.values()) >= 1


def test_a_read_only_reader_sees_whole_windows_while_a_load_runs(
    postgres_url: str, tmp_path: Path
) -> None:
    lake = lake_at(postgres_url, tmp_path)
    first = ("e1", 0, 3, 0)
    _load(lake, first, _part(tmp_path, *first[:3]), None)
    expected_rows = sum(len(list(USAGE.rows_for_day(ORG, day))) for day in DAYS[:4])
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(1)
    out = spawn.Queue()
    again = ("e2", 0, 3, 5)
    worker = spawn.Process(
        target=_worker, args=(lake, again, _part(tmp_path, *again[:3]), barrier, out)
    )
    worker.start()
    seen: set[tuple[int, str]] = set()
    with connect_lake(lake, read_only=True) as reader:
        while worker.is_alive() or not seen:
            # One snapshot per statement: all of the old export's rows or all of the new one's.
            rows = reader.execute(
                "SELECT count(*), string_agg(DISTINCT export_job_id, ',') FROM circleci.job_runs"
            ).fetchone()
            assert rows is not None
            seen.add((int(rows[0]), str(rows[1])))
            if not worker.is_alive():
                break
    worker.join(timeout=60)
    assert out.get(timeout=10)[1]["rows_loaded"] == expected_rows
    assert seen <= {(expected_rows, "e1"), (expected_rows, "e2")}
    with connect_lake(lake, read_only=True) as reader:
        assert reader.execute(
            "SELECT DISTINCT export_job_id FROM circleci.job_runs"
        ).fetchall() == [("e2",)]
        with pytest.raises(duckdb.Error, match=r"read-only|read only"):
            reader.execute("DELETE FROM circleci.job_runs")
    shutil.rmtree(tmp_path / "lake", ignore_errors=True)
