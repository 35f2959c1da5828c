"""Loading cleaned export parts into DuckDB's `circleci.job_runs`, idempotently.

A load replaces one partition window in one transaction ("delete window, then insert", as in
dagster-open-platform): re-running a window never duplicates rows, and a load that fails half-way
leaves the previous rows untouched. Parts are cleaned one at a time (polars), staged on disk as
Parquet and appended from there, so memory is bounded by one part, not by the export. A job run
appears once: within a load the last copy wins, and a later export of the same `job_id` replaces
the row an earlier export wrote, even when it sits in another window.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import random
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from usage_assets.ingest.cleaning import CLEAN_SCHEMA, check_header, clean_part, read_header
from usage_assets.ingest.duckdb_sql import delete_returning, fetch_one
from usage_assets.ingest.job_runs_rules import USAGE_DATE_DRIFT, load_invariants
from usage_assets.ingest.job_runs_table import (
    DAY_LOADS,
    JOB_RUNS,
    LOAD_RUN_ID_COLUMN,
    LOADED_AT_COLUMN,
    ensure_job_runs_table,
)
from usage_assets.ingest.lake import is_commit_conflict

# DuckDB would otherwise take most of the machine's memory; bounded, it spills to disk instead, and
# a load's peak stays within the README's memory target (see `make bench`).
WAREHOUSE_DUCKDB_CONFIG: dict[str, str] = {"memory_limit": "256MB"}
# DuckDB's cap while a load appends (see _append_settings).
LOAD_MEMORY_LIMIT = "128MB"

# A load that loses a DuckLake commit conflict runs again, this many times in all: with N writers
# at least one commits per round, so this covers the largest USAGE_WAREHOUSE_WRITERS with room.
MAX_COMMIT_ATTEMPTS = 8
# Backoff before attempt n+1: BASE * 2**(n-1), at most MAX, times a random 0.5..1 so the
# losers of one round do not collide again in the next.
CONFLICT_BACKOFF_BASE_SECONDS = 0.5
CONFLICT_BACKOFF_MAX_SECONDS = 15.0

_log = logging.getLogger(__name__)

# Told about each retried conflict: (attempt that failed, seconds until the next, the error).
ConflictCallback = Callable[[int, float, BaseException], None]
WindowLock = Callable[[date, date], AbstractContextManager[None]]


class EmptyExportError(ValueError):
    """An export brought no rows for a window that holds rows: refused, the rows are kept.

    CircleCI can answer `completed` before an export's files are listed, so an empty answer is not
    proof that the window had no usage."""

    def __init__(self, window_start: date, window_end: date, rows_kept: int) -> None:
        super().__init__(
            f"The export has no rows for {window_start} .. {window_end}, which already holds "
            f"{rows_kept} job run row(s); they were kept and nothing was written."
        )
        self.rows_kept = rows_kept


class LoadInvariantError(ValueError):
    """A blocking rule failed on the rows a load was about to commit; the load rolled back."""


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
    # Days a newer export had already written: kept as they were, this export's rows skipped.
    days_kept_from_newer_exports: list[date] = field(default_factory=list)
    rows_superseded: int = 0
    # Rows sharing a job_id found in the window before the load (left by a load killed in
    # DuckDB's COMMIT, see bench/DUCKDB_KILL_REPRO.md) and removed by this load.
    duplicate_rows_repaired: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    # DuckLake only: commits lost to a concurrent load and run again (0 on a DuckDB file).
    commit_conflicts_retried: int = 0
    # Days outside the window whose rows this load removed (older copies of job runs this
    # export dated inside the window): their insights must be refreshed too.
    days_changed_outside_window: list[date] = field(default_factory=list)


def load_window(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, Path]],
    *,
    window_start: date,
    window_end: date,
    run_id: str,
    export_job_id: str | None = None,
    export_created_at: datetime | None = None,
    allow_empty: bool = False,
    staging_dir: Path | None = None,
    window_lock: WindowLock | None = None,
    on_conflict: ConflictCallback | None = None,
) -> LoadReport:
    """Replace `job_runs` rows of [window_start, window_end] (inclusive) with the given parts.

    `parts` are (export job id, part path) pairs in load order: a job run found in several parts
    keeps its last copy, and a job run exported before (in any window) is replaced. Header problems
    are checked for every part before anything is written, so a missing required column fails the
    load with nothing changed.

    Newest export wins: days that an export created after `export_created_at` already wrote are
    left as they are (None: this export counts as the newest, for callers that do not know).
    An export without rows for a window that has rows raises EmptyExportError unless
    `allow_empty` says clearing the window is what the user wants.

    The load is one DuckDB transaction, and the blocking rules of `job_runs_rules` are checked
    inside it: a failure anywhere leaves the table as it was. Parts are cleaned by polars in a
    worker thread while DuckDB, on one thread, appends the previous one. Each cleaned part goes
    through an uncompressed Parquet file in `staging_dir` because DuckDB streams a Parquet scan
    into a transaction with bounded memory, whereas appending the in-memory frames measured
    1.5-2.2 GB at 2 M rows.

    Several processes may load a DuckLake at once. `window_lock(window_start, window_end)` is held
    around the whole load (`usage_assets.ingest.lake.day_locks`: loads of overlapping windows run
    one after the other; DuckLake would let two inserts into an empty window both commit). A
    commit DuckLake refuses because a concurrent load deleted from the same table runs the whole
    transaction again, from a fresh snapshot, with the same checks (at most MAX_COMMIT_ATTEMPTS,
    with backoff; `on_conflict` hears of each retry).
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
    load = _LoadIdentity(
        run_id=run_id,
        export_job_id=export_job_id or ", ".join(report.export_job_ids) or "unknown",
        export_created_at=export_created_at,
    )

    if staging_dir is not None:
        staging_dir.mkdir(parents=True, exist_ok=True)
    lock = window_lock(window_start, window_end) if window_lock else nullcontext()
    with (
        lock,
        _append_settings(conn),
        tempfile.TemporaryDirectory(prefix=_staging_prefix(), dir=staging_dir) as folder,
    ):
        if staging_dir is not None:
            sweep_stale_staging(staging_dir, current=Path(folder))
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            # Each attempt counts from scratch: a lost commit wrote nothing.
            attempt_report = dataclasses.replace(report, commit_conflicts_retried=attempt - 1)
            try:
                # Inside the retry: on a new lake, concurrent CREATEs conflict too.
                ensure_job_runs_table(conn)
                _replace_window(
                    conn, parts, Path(folder), attempt_report, load, allow_empty=allow_empty
                )
            except duckdb.Error as exc:
                if not is_commit_conflict(exc) or attempt == MAX_COMMIT_ATTEMPTS:
                    raise
                delay = conflict_backoff(attempt)
                _log.warning(
                    "Load of %s .. %s lost a commit conflict to a concurrent load (attempt %d of "
                    "%d); running it again in %.1f s: %s",
                    window_start, window_end, attempt, MAX_COMMIT_ATTEMPTS, delay, exc,
                )  # fmt: skip
                if on_conflict is not None:
                    on_conflict(attempt, delay, exc)
                time.sleep(delay)
                continue
            return attempt_report
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def conflict_backoff(attempt: int) -> float:
    """Seconds to wait after losing commit `attempt` (1-based), jittered."""
    ceiling = min(CONFLICT_BACKOFF_MAX_SECONDS, CONFLICT_BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


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


@dataclass(frozen=True)
class _LoadIdentity:
    run_id: str
    export_job_id: str
    export_created_at: datetime | None


def _replace_window(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, Path]],
    folder: Path,
    report: LoadReport,
    load: _LoadIdentity,
    *,
    allow_empty: bool,
) -> None:
    """The transaction of :func:`load_window`: delete the window, append the staged parts."""
    window_start, window_end = report.window_start, report.window_end
    clean_columns = ", ".join(CLEAN_SCHEMA)
    conn.execute("BEGIN TRANSACTION")
    committing = False
    worker: threading.Thread | None = None
    stop = threading.Event()
    staged: queue.Queue[_StagedPart | BaseException | None] = queue.Queue(maxsize=1)
    try:
        report.duplicate_rows_repaired = _repair_duplicates(conn, window_start, window_end)
        kept_days = _days_of_newer_exports(conn, window_start, window_end, load.export_created_at)
        report.days_kept_from_newer_exports = kept_days
        worker = threading.Thread(
            target=_stage_parts,
            args=(parts, folder, window_start, window_end, kept_days, staged, stop),
            name="job-runs-cleaner",
            daemon=True,
        )
        worker.start()
        (rows_replaced,) = fetch_one(
            conn,
            f"DELETE FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?"
            " AND NOT list_contains(?::DATE[], usage_date)",
            [window_start, window_end, kept_days],
        )
        report.rows_replaced = int(rows_replaced)
        # From here on every row of the window's written days was written by this load.
        while (item := staged.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            report.rows_read += item.rows_read
            report.rows_outside_window += item.rows_outside_window
            report.rows_superseded += item.rows_superseded
            report.duplicate_rows_dropped += item.duplicates_in_part
            scan = f"read_parquet('{item.path}')"
            if item.may_repeat_earlier_parts:
                # Last copy wins: drop this load's earlier copies of the part's job runs.
                (repeated,) = fetch_one(
                    conn,
                    f"DELETE FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ?"
                    f" AND {LOAD_RUN_ID_COLUMN} = ? AND job_id IN (SELECT job_id FROM {scan})",
                    [window_start, window_end, load.run_id],
                )
                report.duplicate_rows_dropped += int(repeated)
                report.rows_loaded -= repeated
            report.rows_loaded += item.rows_kept
            conn.execute(
                f"INSERT INTO {JOB_RUNS} ({clean_columns}, {LOAD_RUN_ID_COLUMN}, {LOADED_AT_COLUMN})"
                f" SELECT {clean_columns}, ?, now() FROM {scan}",
                [load.run_id],
            )
            item.path.unlink()
        if report.rows_loaded == 0 and report.rows_replaced > 0 and not allow_empty:
            raise EmptyExportError(window_start, window_end, report.rows_replaced)
        _settle_job_runs_seen_elsewhere(conn, report, load)
        _record_day_loads(conn, report, load)
        failed = {
            name: result
            for name, result in load_invariants(conn, load.run_id, window_start, window_end).items()
            if not result.passed
        }
        if failed:
            raise LoadInvariantError(
                f"The load of {window_start} .. {window_end} was rolled back because "
                + "; ".join(
                    f"{name} failed ({result.description})" for name, result in failed.items()
                )
                + ". Nothing was written."
            )
        committing = True
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that fails has ended the transaction already (DuckLake's lost conflict, say):
        # a ROLLBACK would raise "no transaction is active" and hide why.
        if not committing:
            conn.execute("ROLLBACK")
        raise
    finally:
        stop.set()
        _drain(staged)
        if worker is not None and worker.ident is not None:  # started
            worker.join()


def _repair_duplicates(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> int:
    """Remove all but the last-inserted copy of each job_id in the window; the rows removed.

    A load committed twice over itself should be impossible, but a SIGKILL inside DuckDB's
    COMMIT has left both copies of a window (bench/DUCKDB_KILL_REPRO.md). The window's delete
    would remove them anyway for the days this load writes; this also covers the days it keeps."""
    (surplus,) = fetch_one(
        conn,
        f"SELECT count(job_id) - count(DISTINCT job_id) FROM {JOB_RUNS}"
        " WHERE usage_date BETWEEN ? AND ?",
        [first, last],
    )
    if not surplus:
        return 0
    (removed,) = fetch_one(
        conn,
        f"DELETE FROM {JOB_RUNS} WHERE usage_date BETWEEN ? AND ? AND job_id IS NOT NULL"
        f" AND rowid NOT IN (SELECT max(rowid) FROM {JOB_RUNS}"
        "  WHERE usage_date BETWEEN ? AND ? AND job_id IS NOT NULL GROUP BY job_id)",
        [first, last, first, last],
    )
    return int(removed)


def _days_of_newer_exports(
    conn: duckdb.DuckDBPyConnection, first: date, last: date, created_at: datetime | None
) -> list[date]:
    """Days of the window already written by an export created after this one."""
    if created_at is None:
        return []
    rows = conn.execute(
        f"SELECT DISTINCT usage_date FROM {DAY_LOADS}"
        " WHERE usage_date BETWEEN ? AND ? AND export_created_at > ? ORDER BY usage_date",
        [first, last, created_at],
    ).fetchall()
    return [day for (day,) in rows]


def probe_range(window_start: date, window_end: date) -> tuple[date, date]:
    """The days where another row of a job run loaded in the window can be: the window widened
    by USAGE_DATE_DRIFT each side (see job_runs_rules)."""
    return window_start - USAGE_DATE_DRIFT, window_end + USAGE_DATE_DRIFT


def _settle_job_runs_seen_elsewhere(
    conn: duckdb.DuckDBPyConnection, report: LoadReport, load: _LoadIdentity
) -> None:
    """A job run exported again keeps one row, the newest export's, even when its usage date
    moved out of the window. One pass at the end, not one per part.

    Other rows of this load's job runs are looked for only in `probe_range` (pruned by
    usage_date), not in the whole table: a job run's date moves at most USAGE_DATE_DRIFT between
    exports. A copy further away stays, and the weekly table-wide check names it."""
    ours = (
        f"SELECT job_id FROM {JOB_RUNS} WHERE {LOAD_RUN_ID_COLUMN} = ?"
        " AND usage_date BETWEEN ? AND ?"
    )
    written_here = "usage_date BETWEEN ? AND ? AND NOT list_contains(?::DATE[], usage_date)"
    elsewhere = f"usage_date BETWEEN ? AND ? AND NOT ({written_here})"
    window = [report.window_start, report.window_end]
    probe = list(probe_range(report.window_start, report.window_end))
    kept = report.days_kept_from_newer_exports
    # Older copies elsewhere go (a day without a load record predates the record: older).
    older_than_ours = (
        "TRUE"
        if load.export_created_at is None
        else f"coalesce((SELECT max(export_created_at) FROM {DAY_LOADS} d"
        f" WHERE d.usage_date = {JOB_RUNS}.usage_date), '-infinity'::TIMESTAMPTZ) <= ?"
    )
    moved = delete_returning(
        conn,
        JOB_RUNS,
        f"{elsewhere} AND job_id IN ({ours}) AND {older_than_ours}",
        [
            *probe,
            *window,
            kept,
            load.run_id,
            *window,
            *([] if load.export_created_at is None else [load.export_created_at]),
        ],
        f"{LOAD_RUN_ID_COLUMN}, usage_date",
    )
    from_this_run = sum(1 for loaded_by, _ in moved if loaded_by == load.run_id)
    report.duplicate_rows_dropped += from_this_run
    report.rows_loaded -= from_this_run
    report.rows_replaced += len(moved) - from_this_run
    report.days_changed_outside_window = sorted(
        {day for _, day in moved if not report.window_start <= day <= report.window_end}
    )
    if load.export_created_at is None:
        return
    # What is left elsewhere came from newer exports: this load's copy of those job runs goes.
    (superseded,) = fetch_one(
        conn,
        f"DELETE FROM {JOB_RUNS} WHERE {LOAD_RUN_ID_COLUMN} = ? AND {written_here}"
        f" AND job_id IN (SELECT job_id FROM {JOB_RUNS} WHERE {elsewhere})",
        [load.run_id, *window, kept, *probe, *window, kept],
    )
    report.rows_superseded += int(superseded)
    report.rows_loaded -= int(superseded)


def _record_day_loads(
    conn: duckdb.DuckDBPyConnection, report: LoadReport, load: _LoadIdentity
) -> None:
    """Note which export wrote each day this load wrote (kept days keep their newer record)."""
    kept = report.days_kept_from_newer_exports
    window = [report.window_start, report.window_end]
    conn.execute(
        f"DELETE FROM {DAY_LOADS} WHERE usage_date BETWEEN ? AND ?"
        " AND NOT list_contains(?::DATE[], usage_date)",
        [*window, kept],
    )
    conn.execute(
        f"INSERT INTO {DAY_LOADS}"
        f" SELECT day::DATE, ?, coalesce(?::TIMESTAMPTZ, now()), ?, now()"
        " FROM generate_series(?::DATE, ?::DATE, INTERVAL 1 DAY) AS days(day)"
        " WHERE NOT list_contains(?::DATE[], day::DATE)",
        [load.export_job_id, load.export_created_at, load.run_id, *window, kept],
    )


@dataclass(frozen=True)
class _StagedPart:
    path: Path
    rows_read: int
    rows_outside_window: int
    rows_superseded: int
    duplicates_in_part: int
    rows_kept: int
    may_repeat_earlier_parts: bool


def _stage_parts(
    parts: Sequence[tuple[str, Path]],
    folder: Path,
    window_start: date,
    window_end: date,
    kept_days: Sequence[date],
    staged: queue.Queue[_StagedPart | BaseException | None],
    stop: threading.Event,
) -> None:
    """Worker: clean each part, keep the rows of the days it writes (last copy of each job),
    stage them as Parquet."""
    in_window = pl.col("usage_date").is_between(window_start, window_end)
    to_write = in_window & ~pl.col("usage_date").is_in(list(kept_days)) if kept_days else in_window
    # Hashes of the job ids staged so far (8 bytes a row): a part whose ids hit none of them
    # cannot repeat an earlier part, so the loader skips the exact check against the table.
    staged_id_hashes = pl.Series(dtype=pl.UInt64)
    try:
        for index, (export_job_id, path) in enumerate(parts):
            if stop.is_set():
                return
            frame = clean_part(path, export_job_id=export_job_id)
            # Both fix-ups are rare: check cheaply before paying for a filter or a de-dup.
            all_inside = bool(frame.select(to_write.fill_null(False).all()).item())
            inside = frame if all_inside else frame.filter(to_write)
            superseded = (
                0
                if all_inside
                else int(frame.select(in_window.fill_null(False).sum()).item()) - inside.height
            )
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
                rows_outside_window=frame.height - inside.height - superseded,
                rows_superseded=superseded,
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
