"""The windowed, transactional load of cleaned parts into circleci.job_runs."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import pytest

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.ingest.cleaning import ExportFormatError
from usage_assets.ingest.warehouse import JOB_RUNS, load_window
from usage_assets.simulator.synthetic import SyntheticUsage

ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"
DAY1, DAY2, DAY3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
JOB_ID = EXPORT_COLUMN_NAMES.index("JOB_ID")
RUN_DATE = EXPORT_COLUMN_NAMES.index("JOB_RUN_DATE")
STATUS = EXPORT_COLUMN_NAMES.index("JOB_BUILD_STATUS")
USAGE = SyntheticUsage(rows_per_day=12)


def rows(day: date) -> list[list[str]]:
    return [list(row) for row in USAGE.rows_for_day(ORG, day)]


def write_part(path: Path, part_rows: Sequence[Sequence[str]]) -> Path:
    lines = [",".join(EXPORT_COLUMN_NAMES), *(",".join(row) for row in part_rows)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def table(conn: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, date]]:
    """job_id -> (status, usage_date), after checking that no job run is in the table twice."""
    total, distinct = conn.execute(
        f"SELECT count(*), count(DISTINCT job_id) FROM {JOB_RUNS}"
    ).fetchone() or (0, 0)
    assert total == distinct, f"{total - distinct} duplicate job run row(s)"
    return {
        job_id: (status, usage_date)
        for job_id, status, usage_date in conn.execute(
            f"SELECT job_id, job_build_status, usage_date FROM {JOB_RUNS}"
        ).fetchall()
    }


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(tmp_path / "w.duckdb"))


def test_load_replaces_the_window_and_reruns_do_not_duplicate(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    day_rows = rows(DAY1) + rows(DAY2)
    part = write_part(tmp_path / "p.csv.gz", day_rows)
    first = load_window(conn, [("e1", part)], window_start=DAY1, window_end=DAY2, run_id="r1")
    assert first.rows_loaded == len(day_rows) == len(table(conn))
    second = load_window(conn, [("e1", part)], window_start=DAY1, window_end=DAY2, run_id="r2")
    assert second.rows_loaded == len(day_rows) == len(table(conn))
    assert second.rows_replaced == len(day_rows)


def test_last_copy_wins_across_and_within_parts(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    day_rows = rows(DAY1)
    again = [list(day_rows[0]), list(day_rows[1])]
    again[0][STATUS] = "running"
    again[1][STATUS] = "queued"
    within = [list(day_rows[2]), list(day_rows[2])]
    within[1][STATUS] = "blocked"
    parts = [
        ("e1", write_part(tmp_path / "a.csv.gz", day_rows)),
        ("e1", write_part(tmp_path / "b.csv.gz", again + within)),
    ]
    report = load_window(conn, parts, window_start=DAY1, window_end=DAY1, run_id="r1")
    loaded = table(conn)
    assert len(loaded) == len(day_rows)
    assert loaded[day_rows[0][JOB_ID]][0] == "running"
    assert loaded[day_rows[1][JOB_ID]][0] == "queued"
    assert loaded[day_rows[2][JOB_ID]][0] == "blocked"
    # 2 re-sent rows + the within-part repeat + row 2's first copy in part a
    assert report.duplicate_rows_dropped == 4
    assert report.rows_loaded == len(day_rows)


def test_rows_outside_the_window_are_counted_not_written(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    part = write_part(tmp_path / "p.csv.gz", rows(DAY1) + rows(DAY2) + rows(DAY3))
    report = load_window(conn, [("e1", part)], window_start=DAY2, window_end=DAY2, run_id="r1")
    assert report.rows_outside_window == len(rows(DAY1)) + len(rows(DAY3))
    assert {usage_date for _, usage_date in table(conn).values()} == {DAY2}


@pytest.mark.parametrize(
    ("second_run", "dropped", "replaced", "loaded"),
    [("r2", 0, 1, 1), ("r1", 1, 0, 0)],
    ids=["later-run", "same-run-second-window"],
)
def test_a_later_export_replaces_the_job_wherever_its_row_was(
    conn: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    second_run: str,
    dropped: int,
    replaced: int,
    loaded: int,
) -> None:
    # The job's run date moved between two exports. A range run loads one window per export, so
    # the same run may also write both copies: then the first is a duplicate, and rows loaded,
    # summed over the run's windows as the asset reports it, still equals rows in the table.
    original = rows(DAY1)
    load_window(
        conn,
        [("e1", write_part(tmp_path / "a.csv.gz", original))],
        window_start=DAY1,
        window_end=DAY1,
        run_id="r1",
    )
    moved = list(original[0])
    moved[RUN_DATE] = DAY2.isoformat()
    report = load_window(
        conn,
        [("e2", write_part(tmp_path / "b.csv.gz", [moved]))],
        window_start=DAY2,
        window_end=DAY2,
        run_id=second_run,
    )
    assert (report.duplicate_rows_dropped, report.rows_replaced, report.rows_loaded) == (
        dropped,
        replaced,
        loaded,
    )
    table_now = table(conn)
    assert len(table_now) == len(original)
    assert table_now[original[0][JOB_ID]][1] == DAY2


def test_a_failure_half_way_leaves_the_earlier_rows(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    good = write_part(tmp_path / "good.csv.gz", rows(DAY1))
    load_window(conn, [("e1", good)], window_start=DAY1, window_end=DAY1, run_id="r1")
    before = table(conn)
    broken = tmp_path / "broken.csv.gz"
    data = gzip.compress(
        (
            "\n".join([",".join(EXPORT_COLUMN_NAMES), *(",".join(r) for r in rows(DAY1))]) + "\n"
        ).encode()
    )
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportFormatError):
        load_window(
            conn, [("e2", good), ("e2", broken)], window_start=DAY1, window_end=DAY1, run_id="r2"
        )
    assert table(conn) == before
    assert conn.execute(f"SELECT DISTINCT load_run_id FROM {JOB_RUNS}").fetchall() == [("r1",)]


def test_a_part_with_rows_without_job_id_is_refused_before_anything_is_written(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    good = write_part(tmp_path / "good.csv.gz", rows(DAY1))
    load_window(conn, [("e1", good)], window_start=DAY1, window_end=DAY1, run_id="r1")
    before = table(conn)
    keyless = rows(DAY1)
    for row in keyless[1:]:
        row[JOB_ID] = "\\N"
    bad = write_part(tmp_path / "keyless.csv.gz", keyless)
    with pytest.raises(ExportFormatError, match=r"keyless.csv.gz: line 3 has no JOB_ID") as caught:
        load_window(conn, [("e2", bad)], window_start=DAY1, window_end=DAY1, run_id="r2")
    assert f"({len(keyless) - 1} row(s)" in str(caught.value)
    assert table(conn) == before
    assert conn.execute(f"SELECT DISTINCT load_run_id FROM {JOB_RUNS}").fetchall() == [("r1",)]


def append_settings(conn: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    threads, memory_limit = conn.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone() or (0, "")
    return threads, memory_limit


class SettingsAtInsert:
    """A connection stand-in recording DuckDB's threads and memory cap whenever an INSERT runs."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.at_insert: list[tuple[int, str]] = []

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if sql.startswith("INSERT"):
            self.at_insert.append(append_settings(self.conn))
        return self.conn.execute(sql, *args)


def test_parts_are_appended_on_one_duckdb_thread_with_the_load_memory_cap(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    conn.execute("SET threads = 2")
    parts = [
        ("e1", write_part(tmp_path / "a.csv.gz", rows(DAY1))),
        ("e1", write_part(tmp_path / "b.csv.gz", rows(DAY2))),
    ]
    recorder = SettingsAtInsert(conn)
    load_window(recorder, parts, window_start=DAY1, window_end=DAY2, run_id="r1")  # type: ignore[arg-type]
    assert recorder.at_insert == [(1, "122.0 MiB")] * 2  # LOAD_MEMORY_LIMIT, 128 MB


@pytest.mark.parametrize("fails", [False, True], ids=["load", "failed-load"])
def test_the_connection_gets_its_settings_back(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path, fails: bool
) -> None:
    conn.execute("SET threads = 3")
    conn.execute(
        "SET memory_limit = '300MiB'"
    )  # DuckDB shows it to 0.1 MiB, so it restores exactly
    before = append_settings(conn)
    part = write_part(tmp_path / "p.csv.gz", rows(DAY1))
    if fails:
        part.write_bytes(part.read_bytes()[:-20])  # truncated gzip
        with pytest.raises(ExportFormatError):
            load_window(conn, [("e1", part)], window_start=DAY1, window_end=DAY1, run_id="r1")
    else:
        load_window(conn, [("e1", part)], window_start=DAY1, window_end=DAY1, run_id="r1")
    assert append_settings(conn) == before == (3, "300.0 MiB")


def test_a_load_sweeps_what_killed_loads_left_in_staging(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    host = socket.gethostname()
    dead_pid = subprocess.Popen(["true"])  # a process that is certainly gone once waited for
    dead_pid.wait()
    dead = staging / f"job_runs_staging_{host}_{dead_pid.pid}-abc_12"
    alive = staging / f"job_runs_staging_{host}_{os.getpid()}-xyz"  # a load of this process
    elsewhere = staging / "job_runs_staging_other-host_123-q1"  # another host's, still recent
    old_elsewhere = staging / "job_runs_staging_other-host_456-q2"
    for folder in (dead, alive, elsewhere, old_elsewhere):
        folder.mkdir()
        (folder / "part.parquet").write_bytes(b"x" * 10)
    # Ages come from the file system's clock (the dated CI runs move only the process's clock).
    a_day_ago = staging.stat().st_mtime - 25 * 3600
    os.utime(old_elsewhere, (a_day_ago, a_day_ago))

    good = write_part(tmp_path / "good.csv.gz", rows(DAY1))
    load_window(
        conn, [("e1", good)], window_start=DAY1, window_end=DAY1, run_id="r1", staging_dir=staging
    )
    assert sorted(p.name for p in staging.iterdir()) == sorted([alive.name, elsewhere.name])
    assert len(table(conn)) == len(rows(DAY1))
