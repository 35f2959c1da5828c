"""The windowed, transactional load of cleaned parts into circleci.job_runs."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.ingest.cleaning import ExportFormatError
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.ingest.warehouse import (
    EmptyExportError,
    LoadInvariantError,
    LoadReport,
    load_window,
)
from usage_assets.simulator.synthetic import SyntheticUsage
from usage_assets_tests.lake import BACKENDS, connect_backend

ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"
DAY1, DAY2, DAY3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
JOB_ID = EXPORT_COLUMN_NAMES.index("JOB_ID")
RUN_DATE = EXPORT_COLUMN_NAMES.index("JOB_RUN_DATE")
STATUS = EXPORT_COLUMN_NAMES.index("JOB_BUILD_STATUS")
TOTAL_CREDITS = EXPORT_COLUMN_NAMES.index("TOTAL_CREDITS")
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


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, as the DuckDB file and as a DuckLake: every load rule holds on both."""
    url = request.getfixturevalue("postgres_url") if request.param == "ducklake" else None
    connection = connect_backend(request.param, tmp_path, url)
    try:
        yield connection
    finally:
        connection.close()


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
    """A connection stand-in recording DuckDB's threads and memory cap whenever rows are appended."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.at_insert: list[tuple[int, str]] = []

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if sql.startswith(f"INSERT INTO {JOB_RUNS} "):
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


# Creation times of two exports of overlapping windows: OLDER was created first.
OLDER = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NEWER = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def with_status(day_rows: Sequence[Sequence[str]], status: str) -> list[list[str]]:
    changed = [list(row) for row in day_rows]
    for row in changed:
        row[STATUS] = status
    return changed


@pytest.mark.parametrize("newer_first", [False, True], ids=["in-order", "older-loads-last"])
def test_rows_come_from_the_newest_export_whatever_order_the_loads_run_in(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path, newer_first: bool
) -> None:
    # The older export covers DAY1..DAY3; the newer one only DAY1..DAY2, with other statuses.
    older = write_part(tmp_path / "old.csv.gz", rows(DAY1) + rows(DAY2) + rows(DAY3))
    newer = write_part(tmp_path / "new.csv.gz", with_status(rows(DAY1) + rows(DAY2), "running"))

    def load_older() -> LoadReport:
        return load_window(
            conn, [("old", older)], window_start=DAY1, window_end=DAY3, run_id="r-old",
            export_created_at=OLDER,
        )  # fmt: skip

    def load_newer() -> LoadReport:
        return load_window(
            conn, [("new", newer)], window_start=DAY1, window_end=DAY2, run_id="r-new",
            export_created_at=NEWER,
        )  # fmt: skip

    if newer_first:
        load_newer()
        report = load_older()
        assert report.days_kept_from_newer_exports == [DAY1, DAY2]
        assert report.rows_superseded == len(rows(DAY1) + rows(DAY2))
        assert report.rows_loaded == len(rows(DAY3))
    else:
        load_older()
        load_newer()
    loaded = table(conn)
    assert {status for status, day in loaded.values() if day in (DAY1, DAY2)} == {"running"}
    assert {status for status, day in loaded.values() if day == DAY3} != {"running"}
    assert len(loaded) == len(rows(DAY1) + rows(DAY2) + rows(DAY3))
    assert conn.execute(
        "SELECT usage_date, export_job_id FROM circleci.day_loads ORDER BY usage_date"
    ).fetchall() == [(DAY1, "new"), (DAY2, "new"), (DAY3, "old")]


def test_an_older_export_does_not_move_a_job_run_a_newer_export_placed_elsewhere(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # The newer export saw job run X on DAY3; the older one (loaded last) still has it on DAY1.
    moved = list(rows(DAY1)[0])
    moved[RUN_DATE] = DAY3.isoformat()
    newer = write_part(tmp_path / "new.csv.gz", [moved])
    older = write_part(tmp_path / "old.csv.gz", rows(DAY1))
    load_window(conn, [("new", newer)], window_start=DAY3, window_end=DAY3, run_id="r-new",
                export_created_at=NEWER)  # fmt: skip
    report = load_window(conn, [("old", older)], window_start=DAY1, window_end=DAY1,
                         run_id="r-old", export_created_at=OLDER)  # fmt: skip
    assert table(conn)[moved[JOB_ID]][1] == DAY3
    assert report.rows_superseded == 1
    assert report.rows_loaded == len(rows(DAY1)) - 1


@pytest.mark.parametrize("empty", ["no-parts", "header-only-part"])
def test_an_empty_export_never_clears_a_loaded_window_unless_asked(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path, empty: str
) -> None:
    full = write_part(tmp_path / "full.csv.gz", rows(DAY1) + rows(DAY2))
    load_window(conn, [("e1", full)], window_start=DAY1, window_end=DAY2, run_id="r1")
    before = table(conn)
    parts = [] if empty == "no-parts" else [("e2", write_part(tmp_path / "h.csv.gz", []))]
    with pytest.raises(EmptyExportError, match=f"already holds {len(before)} job run row"):
        load_window(conn, parts, window_start=DAY1, window_end=DAY2, run_id="r2")
    assert table(conn) == before
    cleared = load_window(
        conn, parts, window_start=DAY1, window_end=DAY2, run_id="r3", allow_empty=True
    )
    assert cleared.rows_replaced == len(before) and table(conn) == {}


def test_an_empty_export_of_a_quiet_window_loads(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    report = load_window(conn, [], window_start=DAY1, window_end=DAY2, run_id="r1")
    assert report.rows_loaded == 0 and table(conn) == {}


def test_a_load_breaking_a_blocking_rule_rolls_back_before_commit(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    good = write_part(tmp_path / "good.csv.gz", rows(DAY1))
    load_window(conn, [("e1", good)], window_start=DAY1, window_end=DAY1, run_id="r1")
    before = table(conn)
    bad_rows = [list(row) for row in rows(DAY1)]
    bad_rows[0][TOTAL_CREDITS] = str(int(bad_rows[0][TOTAL_CREDITS]) + 5)
    bad = write_part(tmp_path / "bad.csv.gz", bad_rows)
    with pytest.raises(LoadInvariantError, match="credit_components_sum_to_total failed"):
        load_window(conn, [("e2", bad)], window_start=DAY1, window_end=DAY1, run_id="r2")
    assert table(conn) == before
    assert conn.execute(f"SELECT DISTINCT load_run_id FROM {JOB_RUNS}").fetchall() == [("r1",)]


def test_duplicate_job_runs_left_in_the_window_are_repaired_by_the_next_load(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # A newer export wrote DAY1; then (as a kill in DuckDB's checkpoint once did) its rows end
    # up in the table twice. A later load of an older export over DAY1..DAY2 keeps DAY1 (newer),
    # so only an explicit repair removes the second copies.
    newer = write_part(tmp_path / "new.csv.gz", rows(DAY1))
    load_window(conn, [("new", newer)], window_start=DAY1, window_end=DAY1, run_id="r-new",
                export_created_at=NEWER)  # fmt: skip
    conn.execute(f"INSERT INTO {JOB_RUNS} SELECT * FROM {JOB_RUNS}")
    older = write_part(tmp_path / "old.csv.gz", rows(DAY1) + rows(DAY2))
    report = load_window(conn, [("old", older)], window_start=DAY1, window_end=DAY2,
                         run_id="r-old", export_created_at=OLDER)  # fmt: skip
    assert report.duplicate_rows_repaired == len(rows(DAY1))
    assert len(table(conn)) == len(rows(DAY1) + rows(DAY2))  # table() fails on any duplicate
