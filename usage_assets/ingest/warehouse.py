"""Loading cleaned export parts into DuckDB's `circleci.job_runs`, idempotently.

A load replaces one partition window in one transaction ("delete window, then insert", as in
dagster-open-platform): re-running a window never duplicates rows, and a load that fails half-way
leaves the previous rows untouched. Parts are cleaned one at a time (polars), staged on disk as
Parquet and appended from there, so memory is bounded by one part, not by the export. A job run
appears once: within a load the last copy wins, and a later export of the same `job_id` replaces
the row an earlier export wrote, even when it sits in another window.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from usage_assets.ingest.cleaning import CLEAN_SCHEMA, check_header, clean_part, read_header
from usage_assets.ingest.duckdb_sql import fetch_one

SCHEMA = "circleci"
JOB_RUNS = f"{SCHEMA}.job_runs"
LOAD_RUN_ID_COLUMN = "load_run_id"
LOADED_AT_COLUMN = "loaded_at"

# DuckDB would otherwise take most of the machine's memory; bounded, it spills to disk instead, and
# a load's peak stays within the README's memory target (see `make bench`).
WAREHOUSE_DUCKDB_CONFIG: dict[str, str] = {"memory_limit": "256MB"}
# DuckDB's cap while a load appends (see _append_settings).
LOAD_MEMORY_LIMIT = "128MB"

_DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Datetime: "TIMESTAMPTZ",
    pl.Boolean: "BOOLEAN",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
}


def job_runs_columns() -> dict[str, str]:
    """Column name -> DuckDB type, in table order."""
    columns = {name: _DUCKDB_TYPES[dtype.base_type()] for name, dtype in CLEAN_SCHEMA.items()}
    columns[LOAD_RUN_ID_COLUMN] = "VARCHAR"
    columns[LOADED_AT_COLUMN] = "TIMESTAMPTZ"
    return columns


@dataclass
class LoadReport:
    """What one window load did, for asset metadata."""

    export_job_ids: list[str]
    window_start: date
    window_end: date
    parts: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_outside_window: int = 0
    duplicate_rows_dropped: int = 0
    rows_replaced: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)


def ensure_job_runs_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    ddl = ", ".join(f"{name} {sql_type}" for name, sql_type in job_runs_columns().items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {JOB_RUNS} ({ddl})")


def load_window(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, Path]],
    *,
    window_start: date,
    window_end: date,
    run_id: str,
    staging_dir: Path | None = None,
) -> LoadReport:
    """Replace `job_runs` rows of [window_start, window_end] (inclusive) with the given parts.

    `parts` are (export job id, part path) pairs in load order: a job run found in several parts
    keeps its last copy, and a job run exported before (in any window) is replaced. Header problems
    are checked for every part before anything is written, so a missing required column fails the
    load with nothing changed.

    The load is one DuckDB transaction: a failure anywhere leaves the table as it was. Parts are
    cleaned by polars in a worker thread while DuckDB, on one thread, appends the previous one.
    Each cleaned part goes through an uncompressed Parquet file in `staging_dir` because DuckDB
    streams a Parquet scan into a transaction with bounded memory, whereas appending the in-memory
    frames measured 1.5-2.2 GB at 2 M rows.
    """
    report = LoadReport(
        export_job_ids=list(dict.fromkeys(job_id for job_id, _ in parts)),
        window_start=window_start,
        window_end=window_end,
        parts=len(parts),
    )
    unknown: dict[str, None] = {}
    missing: dict[str, None] = {}
    for _, path in parts:
        header_check = check_header(read_header(path))
        unknown.update(dict.fromkeys(header_check.unknown))
        missing.update(dict.fromkeys(header_check.missing_optional))
    report.unknown_columns = list(unknown)
    report.missing_optional_columns = list(missing)

    ensure_job_runs_table(conn)
    if staging_dir is not None:
        staging_dir.mkdir(parents=True, exist_ok=True)
    with (
        _append_settings(conn),
        tempfile.TemporaryDirectory(prefix=_staging_prefix(), dir=staging_dir) as folder,
    ):
        if staging_dir is not None:
            sweep_stale_staging(staging_dir, current=Path(folder))
        _replace_window(conn, parts, Path(folder), report, run_id)
    return report


STAGING_PREFIX = "job_runs_staging_"
# A staging folder of another host is only known dead by its age (loads take minutes).
STALE_STAGING_AGE = timedelta(hours=24)


def _staging_prefix() -> str:
    """Staging folders are named after the host and process that own them, so the next load can
    tell a killed load's leftovers from a load still running."""
    # tempfile appends letters, digits and "_" only, so the last "-" ends the owner.
    return f"{STAGING_PREFIX}{socket.gethostname()}_{os.getpid()}-"


def sweep_stale_staging(staging_dir: Path, *, current: Path) -> list[Path]:
    """Remove staging folders left by loads that died (SIGKILL, OOM) before cleaning up: this
    host's folders whose process is gone, and any folder older than STALE_STAGING_AGE.

    Ages are measured against `current` (the running load's own, new staging folder), so both
    times come from the file system's clock, whatever this process's clock says."""
    reference = current.stat().st_mtime
    host = socket.gethostname()
    removed: list[Path] = []
    for folder in staging_dir.glob(f"{STAGING_PREFIX}*"):
        if folder == current:
            continue
        owner = folder.name.removeprefix(STAGING_PREFIX).rpartition("-")[0]
        owner_host, _, pid_text = owner.rpartition("_")
        try:
            age = timedelta(seconds=reference - folder.stat().st_mtime)
        except FileNotFoundError:
            continue
        dead_here = owner_host == host and pid_text.isdigit() and not _process_alive(int(pid_text))
        if dead_here or age > STALE_STAGING_AGE:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _append_settings(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run DuckDB on one thread with a smaller memory cap while a load appends; restore after.

    One thread: a parallel INSERT leaves each thread's partial row groups behind, and the next
    checkpoint rewrites all of them (slower overall, and a file twice the size); one thread
    appends about as fast and leaves nothing to rewrite, while the other core cleans the next
    part in polars. `make bench` and the README's performance section have the figures.

    Memory: a streamed append needs little, and every MB DuckDB does not hold is one polars may
    keep between parts (see usage_assets/__init__.py), which lowers the load's peak at the same
    speed.

    These settings are the database's, not the connection's: other connections of this process
    see them too until the load ends (loads take the warehouse pool, one at a time).
    """
    threads = conn.execute("SELECT current_setting('threads')").fetchone()
    memory_limit = conn.execute("SELECT current_setting('memory_limit')").fetchone()
    conn.execute("SET threads = 1")
    conn.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        if threads is not None:
            conn.execute(f"SET threads = {int(threads[0])}")
        if memory_limit is not None:  # as DuckDB shows it, to 0.1 MiB
            conn.execute(f"SET memory_limit = '{memory_limit[0]}'")


def _replace_window(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, Path]],
    folder: Path,
    report: LoadReport,
    run_id: str,
) -> None:
    """The transaction of :func:`load_window`: delete the window, append the staged parts."""
    window_start, window_end = report.window_start, report.window_end
    clean_columns = ", ".join(CLEAN_SCHEMA)
    staged: queue.Queue[_StagedPart | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()
    worker = threading.Thread(
        target=_stage_parts,
        args=(parts, folder, window_start, window_end, staged, stop),
        name="job-runs-cleaner",
        daemon=True,
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        worker.start()
        (rows_replaced,) = fetch_one(
            conn,
            f"DELETE FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?",
            [window_start, window_end],
        )
        report.rows_replaced = int(rows_replaced)
        # From here on every row in the window was written by this load.
        while (item := staged.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            report.rows_read += item.rows_read
            report.rows_outside_window += item.rows_outside_window
            report.duplicate_rows_dropped += item.duplicates_in_part
            scan = f"read_parquet('{item.path}')"
            if item.may_repeat_earlier_parts:
                # Last copy wins: drop this load's earlier copies of the part's job runs.
                (repeated,) = fetch_one(
                    conn,
                    f"DELETE FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?"
                    f" AND job_id IN (SELECT job_id FROM {scan})",
                    [window_start, window_end],
                )
                report.duplicate_rows_dropped += int(repeated)
                report.rows_loaded -= repeated
            report.rows_loaded += item.rows_kept
            conn.execute(
                f"INSERT INTO {JOB_RUNS} ({clean_columns}, {LOAD_RUN_ID_COLUMN}, {LOADED_AT_COLUMN})"
                f" SELECT {clean_columns}, ?, now() FROM {scan}",
                [run_id],
            )
            item.path.unlink()
        # A job run exported again replaces its earlier row even outside the window (its run
        # date changed). One pass over the table at the end, not one per part.
        moved = conn.execute(
            f"DELETE FROM {JOB_RUNS} WHERE (usage_date IS NULL OR usage_date NOT BETWEEN ? AND ?)"
            f" AND job_id IN"
            f" (SELECT job_id FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?)"
            f" RETURNING {LOAD_RUN_ID_COLUMN}",
            [window_start, window_end, window_start, window_end],
        ).fetchall()
        from_this_run = sum(1 for (loaded_by,) in moved if loaded_by == run_id)
        report.duplicate_rows_dropped += from_this_run
        report.rows_loaded -= from_this_run
        report.rows_replaced += len(moved) - from_this_run
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        stop.set()
        _drain(staged)
        if worker.ident is not None:  # started
            worker.join()


@dataclass(frozen=True)
class _StagedPart:
    path: Path
    rows_read: int
    rows_outside_window: int
    duplicates_in_part: int
    rows_kept: int
    may_repeat_earlier_parts: bool


def _stage_parts(
    parts: Sequence[tuple[str, Path]],
    folder: Path,
    window_start: date,
    window_end: date,
    staged: queue.Queue[_StagedPart | BaseException | None],
    stop: threading.Event,
) -> None:
    """Worker: clean each part, keep its in-window rows (last copy of each job), stage as Parquet."""
    in_window = pl.col("usage_date").is_between(window_start, window_end)
    # Hashes of the job ids staged so far (8 bytes a row): a part whose ids hit none of them
    # cannot repeat an earlier part, so the loader skips the exact check against the table.
    staged_id_hashes = pl.Series(dtype=pl.UInt64)
    try:
        for index, (export_job_id, path) in enumerate(parts):
            if stop.is_set():
                return
            frame = clean_part(path, export_job_id=export_job_id)
            # Both fix-ups are rare: check cheaply before paying for a filter or a de-dup.
            all_inside = bool(frame.select(in_window.fill_null(False).all()).item())
            inside = frame if all_inside else frame.filter(in_window)
            ids = inside.get_column("job_id")
            latest = (
                inside
                if ids.n_unique() == inside.height
                else inside.unique(subset="job_id", keep="last", maintain_order=True)
            )
            id_hashes = latest.get_column("job_id").hash()
            # Probe the earlier hashes with this part's: hashing the part costs the same every time.
            may_repeat = bool(staged_id_hashes.is_in(id_hashes.implode()).any())
            staged_id_hashes.append(id_hashes)
            target = folder / f"part_{index:04d}.parquet"
            latest.write_parquet(target, compression="uncompressed", statistics=False)
            item = _StagedPart(
                path=target,
                rows_read=frame.height,
                rows_outside_window=frame.height - inside.height,
                duplicates_in_part=inside.height - latest.height,
                rows_kept=latest.height,
                may_repeat_earlier_parts=may_repeat,
            )
            del frame, inside, latest
            _put(staged, item, stop)
        _put(staged, None, stop)
    except BaseException as exc:  # handed to the loading thread, which raises it
        _put(staged, exc, stop)


def _put(
    staged: queue.Queue[_StagedPart | BaseException | None],
    item: _StagedPart | BaseException | None,
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        try:
            staged.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(staged: queue.Queue[_StagedPart | BaseException | None]) -> None:
    while True:
        try:
            staged.get_nowait()
        except queue.Empty:
            return
