"""Pure-DuckDB reproducer for issue 12.5: can a SIGKILL during commit / close-checkpoint leave a
replaced window twice in the database (the old rows and the new rows)?

The parent builds a database with one table shaped like `circleci.job_runs` (52 columns of
VARCHAR / DATE / TIMESTAMPTZ / BIGINT / BOOLEAN / DOUBLE, data generated with `range()`) holding
one "window" of rows, and stages the same rows as uncompressed Parquet parts. Then, repeatedly,
it spawns a child that replaces the window in one transaction, as
usage_assets/ingest/warehouse.py does (`BEGIN; DELETE window; INSERT ... SELECT ... FROM
read_parquet(part)` per part; a small `DELETE ... RETURNING`; `COMMIT`; close, which
checkpoints), with `threads = 1` and `memory_limit = '128MB'`. The child prints a marker after each
step; the parent SIGKILLs it at a random moment (mostly 0..--delay-max-ms after the COMMIT marker,
sometimes during the transaction), copies the files that are left, reopens the database and
checks: rows in the window == distinct ids == expected rows, and no id outside it either.

No Dagster, no polars: `python -m bench.duckdb_kill_repro --kills 300`. Results are logged as
JSON lines (one per run) and any database that breaks the invariant is kept, as it was right
after the kill, under --keep-dir (then repaired, so each violation counts on its own).
`--torn-wal` is the deterministic variant: no kills, the committed WAL is cut at entry boundaries.
Findings and the upstream issue text: bench/DUCKDB_KILL_REPRO.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

TABLE = "job_runs"
WINDOW_START = "2026-10-01"
WINDOW_DAYS = 31
DEFAULT_KEEP = Path(__file__).resolve().parent / ".cache" / "duckdb_kill_repro"

# Column name -> (type, SQL expression of the row number `i`): the shape of circleci.job_runs.
_UUID = "substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12)"


def _uuid(salt: str) -> str:
    return _UUID.replace("h", f"md5('{salt}' || i::VARCHAR)")


def _ts(offset_seconds: str) -> str:
    return f"(TIMESTAMPTZ '{WINDOW_START} 00:00:00+00' + to_seconds({offset_seconds}))"


_DAY = f"(i % {WINDOW_DAYS})"
_RUN_AT = f"({_DAY} * 86400 + (i * 7919) % 86400)"
COLUMNS: dict[str, tuple[str, str]] = {
    "organization_id": ("VARCHAR", "'b9291e0d-a11e-41fb-8517-c545388b5953'"),
    "organization_name": ("VARCHAR", "'example-org'"),
    "organization_created_date": ("DATE", "DATE '2020-01-15'"),
    "project_id": ("VARCHAR", _uuid("project").replace("i::VARCHAR", "(i % 40)::VARCHAR")),
    "project_name": ("VARCHAR", "'project-' || (i % 40)::VARCHAR"),
    "project_created_date": ("DATE", "DATE '2021-01-01' + (i % 40)::INTEGER"),
    "last_build_finished_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 600")),
    "vcs_name": ("VARCHAR", "'github'"),
    "vcs_url": ("VARCHAR", "'https://github.com/example-org/project-' || (i % 40)::VARCHAR"),
    "vcs_branch": (
        "VARCHAR",
        "CASE WHEN i % 3 = 0 THEN 'main' ELSE 'feature/branch-' || (i % 997)::VARCHAR END",
    ),
    "pipeline_id": ("VARCHAR", _uuid("pipeline").replace("i::VARCHAR", "(i // 6)::VARCHAR")),
    "pipeline_created_at": ("TIMESTAMPTZ", _ts(_RUN_AT)),
    "pipeline_number": ("BIGINT", "i // 6"),
    "is_unregistered_user": ("BOOLEAN", "i % 17 = 0"),
    "pipeline_trigger_source": (
        "VARCHAR",
        "CASE WHEN i % 5 = 0 THEN 'schedule' ELSE 'webhook' END",
    ),
    "pipeline_trigger_user_id": (
        "VARCHAR",
        _uuid("user").replace("i::VARCHAR", "(i % 300)::VARCHAR"),
    ),
    "workflow_id": ("VARCHAR", _uuid("workflow").replace("i::VARCHAR", "(i // 3)::VARCHAR")),
    "workflow_name": ("VARCHAR", "'workflow-' || (i % 12)::VARCHAR"),
    "workflow_first_job_queued_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 1")),
    "workflow_first_job_started_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 5")),
    "workflow_stopped_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 900")),
    "is_workflow_successful": ("BOOLEAN", "i % 11 <> 0"),
    "job_name": ("VARCHAR", "'job-' || (i % 25)::VARCHAR"),
    "job_run_number": ("BIGINT", "i"),
    "job_id": ("VARCHAR", _uuid("job")),
    "job_run_date": ("DATE", f"DATE '{WINDOW_START}' + {_DAY}::INTEGER"),
    "job_run_queued_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 10")),
    "job_run_started_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 20")),
    "job_run_stopped_at": ("TIMESTAMPTZ", _ts(f"{_RUN_AT} + 20 + (i % 1800)")),
    "job_build_status": ("VARCHAR", "CASE WHEN i % 11 = 0 THEN 'failed' ELSE 'success' END"),
    "resource_class": (
        "VARCHAR",
        "CASE i % 4 WHEN 0 THEN 'small' WHEN 1 THEN 'medium' WHEN 2 THEN 'large' ELSE 'xlarge' END",
    ),
    "operating_system": ("VARCHAR", "CASE WHEN i % 9 = 0 THEN 'macos' ELSE 'linux' END"),
    "executor": ("VARCHAR", "CASE WHEN i % 7 = 0 THEN 'machine' ELSE 'docker' END"),
    "parallelism": ("BIGINT", "1 + i % 4"),
    "job_run_seconds": ("DOUBLE", "(i % 1800)::DOUBLE + 0.25"),
    "median_cpu_utilization_pct": ("DOUBLE", "((i * 31) % 10000) / 100.0"),
    "max_cpu_utilization_pct": ("DOUBLE", "((i * 37) % 10000) / 100.0"),
    "median_ram_utilization_pct": ("DOUBLE", "((i * 41) % 10000) / 100.0"),
    "max_ram_utilization_pct": ("DOUBLE", "((i * 43) % 10000) / 100.0"),
    "compute_credits": ("DOUBLE", "((i * 13) % 5000) / 10.0"),
    "dlc_credits": ("DOUBLE", "CASE WHEN i % 10 = 0 THEN 200.0 ELSE 0.0 END"),
    "user_credits": ("DOUBLE", "0.0"),
    "storage_credits": ("DOUBLE", "((i * 3) % 100) / 100.0"),
    "network_credits": ("DOUBLE", "((i * 5) % 100) / 100.0"),
    "lease_credits": ("DOUBLE", "0.0"),
    "lease_overage_credits": ("DOUBLE", "0.0"),
    "ipranges_credits": ("DOUBLE", "0.0"),
    "total_credits": ("DOUBLE", "((i * 13) % 5000) / 10.0 + ((i * 3) % 100) / 100.0"),
    "usage_date": ("DATE", f"DATE '{WINDOW_START}' + {_DAY}::INTEGER"),
    "export_job_id": ("VARCHAR", "'export-' || (i % 4)::VARCHAR"),
}
DATA_COLUMNS = ", ".join(COLUMNS)
PLANS = ("in_transaction", "commit", "after_commit")
MODES = ("alone", "reader", "wal")
WINDOW_END_SQL = f"DATE '{WINDOW_START}' + {WINDOW_DAYS - 1}"


def _ddl() -> str:
    cols = [f"{name} {sql_type}" for name, (sql_type, _) in COLUMNS.items()]
    cols += ["load_run_id VARCHAR", "loaded_at TIMESTAMPTZ"]
    return f"CREATE TABLE {TABLE} ({', '.join(cols)})"


def _generator(first: int, count: int) -> str:
    exprs = ", ".join(f"{expr} AS {name}" for name, (_, expr) in COLUMNS.items())
    return f"SELECT {exprs} FROM range({first}, {first + count}) AS t(i)"


# ---------------------------------------------------------------------------------------------
# Child: one load (the transaction of warehouse._replace_window), then close.


def _mark(label: str) -> None:
    print(label, flush=True)


def _replace_window(
    conn: duckdb.DuckDBPyConnection,
    parts: list[Path],
    run_id: str,
    mark: Callable[[str], None],
) -> None:
    """The load's transaction (warehouse._replace_window without the polars side)."""
    conn.execute("SET threads = 1")
    conn.execute("SET memory_limit = '128MB'")
    conn.execute("BEGIN TRANSACTION")
    mark("BEGIN")
    conn.execute(
        f"DELETE FROM {TABLE} WHERE usage_date BETWEEN DATE '{WINDOW_START}' AND {WINDOW_END_SQL}"
    ).fetchone()
    mark("DELETED")
    for index, part in enumerate(parts):
        conn.execute(
            f"INSERT INTO {TABLE} ({DATA_COLUMNS}, load_run_id, loaded_at)"
            f" SELECT {DATA_COLUMNS}, ?, now() FROM read_parquet('{part}')",
            [run_id],
        )
        mark(f"INSERTED {index}")
    # The load's last, usually empty, DELETE: ids of the window found outside it.
    conn.execute(
        f"DELETE FROM {TABLE} WHERE (usage_date IS NULL OR usage_date NOT BETWEEN"
        f" DATE '{WINDOW_START}' AND {WINDOW_END_SQL}) AND job_id IN (SELECT job_id FROM {TABLE}"
        f" WHERE usage_date BETWEEN DATE '{WINDOW_START}' AND {WINDOW_END_SQL}) RETURNING load_run_id"
    ).fetchall()
    mark("PRECOMMIT")
    conn.execute("COMMIT")
    mark("COMMITTED")


def child(db: Path, parts: list[Path], run_id: str, mode: str) -> None:
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": "256MB"}
    conn = duckdb.connect(str(db), config=config)
    reader = None
    if mode == "reader":
        # Another connection of the same process (the same database instance) in a read
        # transaction: COMMIT cannot checkpoint, so it writes the WAL; the checkpoint runs when
        # the last connection closes.
        reader = duckdb.connect(str(db), config=config)
        reader.execute("BEGIN TRANSACTION")
        reader.execute(f"SELECT count(*) FROM {TABLE}").fetchall()
    if mode == "wal":
        # The same without a second connection: COMMIT writes the WAL, close checkpoints.
        conn.execute("SET checkpoint_threshold = '100GB'")
    _mark("OPEN")
    _replace_window(conn, parts, run_id, _mark)
    # warehouse._append_settings restores the settings after the transaction.
    conn.execute("SET threads = 2")
    conn.execute("SET memory_limit = '256MB'")
    if reader is not None:
        reader.execute("COMMIT")
        reader.close()
        _mark("READER_CLOSED")
    conn.close()
    _mark("CLOSED")


# ---------------------------------------------------------------------------------------------
# Parent.


@dataclass
class Run:
    index: int
    run_id: str
    plan: str  # one of PLANS, or "none" (calibration)
    delay_ms: float
    killed: bool = False
    last_marker: str = ""
    markers_ms: dict[str, float] = field(default_factory=dict)  # since spawn
    kill_ms: float | None = None  # since spawn
    kill_after_commit_ms: float | None = None
    files_at_start: dict[str, int] = field(default_factory=dict)  # a WAL left by an earlier kill?
    files_at_kill: dict[str, int] = field(default_factory=dict)
    window_rows: int = 0
    distinct_ids: int = 0
    total_rows: int = 0
    rows_by_run: dict[str, int] = field(default_factory=dict)
    ok: bool = True
    error: str = ""


def _db_files(db: Path) -> dict[str, int]:
    return {
        p.name: p.stat().st_size
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name) and p.is_file()
    }


def _setup(work: Path, rows: int, other_rows: int, parts: int) -> tuple[Path, list[Path]]:
    db = work / "repro.duckdb"
    part_paths: list[Path] = []
    conn = duckdb.connect(str(db))
    per_part = -(-rows // parts)
    for k in range(parts):
        first = k * per_part
        count = min(per_part, rows - first)
        path = work / f"part_{k:04d}.parquet"
        conn.execute(
            f"COPY ({_generator(first, count)}) TO '{path}' (FORMAT parquet, COMPRESSION uncompressed)"
        )
        part_paths.append(path)
    conn.execute(_ddl())
    if other_rows:
        # Rows outside the window (a year earlier, ids of their own) that the load must not touch.
        conn.execute(
            f"INSERT INTO {TABLE} SELECT * REPLACE (usage_date - INTERVAL 1 YEAR AS usage_date),"
            f" 'run-other', now() FROM ({_generator(10_000_000, other_rows)})"
        )
    scan = ", ".join(f"'{p}'" for p in part_paths)
    conn.execute(f"INSERT INTO {TABLE} SELECT *, 'run-0', now() FROM read_parquet([{scan}])")
    conn.close()
    return db, part_paths


def _check(db: Path, run: Run, rows: int, other_rows: int) -> None:
    conn = duckdb.connect(str(db))
    try:
        window = f"usage_date BETWEEN DATE '{WINDOW_START}' AND {WINDOW_END_SQL}"
        found = conn.execute(
            f"SELECT count(*) FILTER (WHERE {window}), count(DISTINCT job_id) FILTER (WHERE {window}),"
            f" count(*), count(DISTINCT job_id) FROM {TABLE}"
        ).fetchone()
        assert found is not None
        run.window_rows, run.distinct_ids, run.total_rows, distinct_all = (int(v) for v in found)
        run.rows_by_run = {
            str(k): int(v)
            for k, v in conn.execute(
                f"SELECT load_run_id, count(*) FROM {TABLE} GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        }
    finally:
        conn.close()
    run.ok = (
        run.window_rows == rows
        and run.distinct_ids == rows
        and run.total_rows == rows + other_rows
        and distinct_all == rows + other_rows
    )


def _repair(db: Path, parts: list[Path]) -> None:
    """After a violation: the window once again (and checkpointed), so the next run is judged on
    its own rather than on the duplicates it inherited."""
    conn = duckdb.connect(str(db))
    try:
        scan = ", ".join(f"'{p}'" for p in parts)
        conn.execute(
            f"DELETE FROM {TABLE} WHERE usage_date BETWEEN DATE '{WINDOW_START}' AND {WINDOW_END_SQL}"
        )
        conn.execute(
            f"INSERT INTO {TABLE} SELECT *, 'run-repair', now() FROM read_parquet([{scan}])"
        )
        conn.execute("CHECKPOINT")
    finally:
        conn.close()


def _spawn(db: Path, parts: list[Path], run_id: str, mode: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.duckdb_kill_repro", "--child", str(db), run_id, mode]
    command += [str(p) for p in parts]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _one_run(run: Run, db: Path, parts: list[Path], mode: str, timeout_s: float) -> None:
    run.files_at_start = _db_files(db)
    started = time.monotonic()
    proc = _spawn(db, parts, run.run_id, mode)
    lines: queue.Queue[tuple[str, float] | None] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((line.strip(), time.monotonic()))
        lines.put(None)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    trigger = {"after_commit": "COMMITTED", "commit": "PRECOMMIT", "in_transaction": "BEGIN"}.get(
        run.plan
    )
    deadline: float | None = None
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if deadline is None:
            wait = max(0.0, started + timeout_s - time.monotonic())
        try:
            item = lines.get(timeout=wait)
        except queue.Empty:
            item = None
            if deadline is not None and proc.poll() is None:
                run.files_at_kill = _db_files(db)  # just before the kill: what it will leave
                os.kill(proc.pid, signal.SIGKILL)
                now = time.monotonic()
                run.killed = True
                run.kill_ms = (now - started) * 1000
                commit = run.markers_ms.get("COMMITTED")
                if commit is not None:
                    run.kill_after_commit_ms = run.kill_ms - commit
                break
            if deadline is None:
                proc.kill()
                run.error = "timeout"
                break
            break
        if item is None:
            break
        label, at = item
        run.markers_ms[label] = (at - started) * 1000
        run.last_marker = label
        if label == trigger and deadline is None:
            deadline = at + run.delay_ms / 1000
    proc.wait()
    thread.join(timeout=5)
    # Markers still in the pipe were printed before the kill.
    while not lines.empty():
        item = lines.get()
        if item is not None:
            run.markers_ms.setdefault(item[0], (item[1] - started) * 1000)
            run.last_marker = item[0]
    if run.killed and proc.returncode != -signal.SIGKILL:
        run.killed = False  # it had exited on its own
    if not run.killed and proc.returncode not in (0, -signal.SIGKILL):
        run.error = run.error or f"child exited with {proc.returncode}"


WAL_TYPES = {
    25: "USE_TABLE",
    26: "INSERT_TUPLE",
    27: "DELETE_TUPLE",
    28: "UPDATE_TUPLE",
    29: "ROW_GROUP_DATA",
    98: "WAL_VERSION",
    99: "CHECKPOINT",
    100: "WAL_FLUSH",
}


def wal_entries(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, type) of each entry of a version-2 WAL (8-byte size, 8-byte checksum, body
    starting with field 100 = the entry type); the unframed version entry comes first."""
    end = data.index(b"\xff\xff") + 2
    entries = [(0, end, "WAL_VERSION")]
    while end + 16 <= len(data):
        (size,) = struct.unpack_from("<Q", data, end)
        start, end = end, end + 16 + size
        body = data[start + 16 : end]
        if len(body) < size or body[:2] != b"\x64\x00":
            entries.append((start, len(data), "TORN"))
            break
        entries.append((start, end, WAL_TYPES.get(body[2], str(body[2]))))
    return entries


def torn_wal_check(work: Path, rows: int, parts_count: int) -> dict[str, Any]:
    """Deterministic variant: commit one load without checkpointing (the WAL is kept), then
    reopen copies of the database whose WAL is cut at entry boundaries, as a crash between two
    WAL writes leaves it. Every cut before the final WAL_FLUSH must give the old rows only."""
    db, parts = _setup(work, rows, 0, parts_count)
    conn = duckdb.connect(str(db), config={"memory_limit": "256MB"})
    conn.execute("SET checkpoint_threshold = '100GB'")
    conn.execute("PRAGMA disable_checkpoint_on_shutdown")
    _replace_window(conn, parts, "run-1", lambda label: None)
    conn.close()
    wal = db.with_name(db.name + ".wal")
    if not wal.exists():
        return {"error": "no WAL left after the commit (it checkpointed)"}
    data = wal.read_bytes()
    entries = wal_entries(data)
    layout = [
        f"{kind} x{sum(1 for e in entries if e[2] == kind)}"
        for kind in dict.fromkeys(e[2] for e in entries)
    ]
    print(f"WAL {len(data)} bytes: {', '.join(layout)}", flush=True)
    cuts: dict[str, int] = {}
    last_delete = max(i for i, e in enumerate(entries) if e[2] == "DELETE_TUPLE")
    row_group = max(i for i, e in enumerate(entries) if e[2] == "ROW_GROUP_DATA")
    cuts["half of the deletes"] = entries[(1 + last_delete) // 2][1]
    cuts["after the deletes"] = entries[last_delete][1]
    cuts["inside ROW_GROUP_DATA (torn entry)"] = (
        entries[row_group][0] + entries[row_group][1]
    ) // 2
    cuts["after ROW_GROUP_DATA, before WAL_FLUSH"] = entries[row_group][1]
    cuts["whole WAL"] = len(data)
    results: dict[str, Any] = {"wal_bytes": len(data), "wal_layout": layout, "cuts": {}}
    for name, cut in cuts.items():
        case = work / f"cut_{cut}"
        case.mkdir()
        shutil.copy2(db, case / db.name)
        (case / wal.name).write_bytes(data[:cut])
        check = duckdb.connect(str(case / db.name), read_only=True)
        try:
            by_run = dict(
                check.execute(
                    f"SELECT load_run_id, count(*) FROM {TABLE} GROUP BY ALL ORDER BY ALL"
                ).fetchall()
            )
        finally:
            check.close()
        expected = {"run-1": rows} if cut == len(data) else {"run-0": rows}
        verdict = "OK " if by_run == expected else "BAD"
        print(
            f"{verdict} WAL cut at {cut} bytes ({name}): {by_run}, expected {expected}", flush=True
        )
        results["cuts"][name] = {"bytes": cut, "rows_by_run": by_run, "ok": by_run == expected}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=50, help="runs that end in a SIGKILL")
    parser.add_argument("--rows", type=int, default=216_699, help="rows of the window")
    parser.add_argument("--other-rows", type=int, default=0, help="rows outside the window")
    parser.add_argument("--parts", type=int, default=4, help="Parquet parts (one INSERT each)")
    parser.add_argument("--delay-max-ms", type=float, default=500.0)
    parser.add_argument(
        "--in-transaction-fraction",
        type=float,
        default=0.15,
        help="share of runs killed at a random moment between BEGIN and COMMIT",
    )
    parser.add_argument(
        "--after-commit-fraction",
        type=float,
        default=0.25,
        help="share of runs killed 0..--delay-max-ms after COMMIT returned; the rest are killed"
        " 0..1.1 x (COMMIT + close) after the marker printed just before COMMIT",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="alone",
        help="alone: the load's connection is the only one (COMMIT checkpoints by itself, no WAL);"
        " reader: a second connection of the child holds a read transaction across COMMIT (COMMIT"
        " writes the WAL, closing checkpoints); wal: checkpoint_threshold = 100GB (the same,"
        " without a second connection)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--keep-dir", type=Path, default=DEFAULT_KEEP)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop early")
    parser.add_argument(
        "--torn-wal",
        action="store_true",
        help="no kills: the deterministic check of WAL files cut at entry boundaries",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        db, run_id, mode, *parts = args.child
        child(Path(db), [Path(p) for p in parts], run_id, mode)
        return 0

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="duckdb_kill_repro_"))
    work.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    keep = args.keep_dir / stamp
    keep.mkdir(parents=True, exist_ok=True)
    log_path = keep / "runs.jsonl"
    print(
        f"duckdb {duckdb.__version__}, python {platform.python_version()}, {platform.platform()},"
        f" {os.cpu_count()} cpus; mode {args.mode}; seed {seed}; work {work}; log {log_path}",
        flush=True,
    )
    if args.torn_wal:
        result = torn_wal_check(work, args.rows, args.parts)
        result["duckdb"] = duckdb.__version__
        (keep / "torn_wal.json").write_text(json.dumps(result, indent=2) + "\n")
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        return 0 if all(c["ok"] for c in result.get("cuts", {}).values()) else 1
    t0 = time.monotonic()
    db, parts = _setup(work, args.rows, args.other_rows, args.parts)
    sizes = {p.name: p.stat().st_size for p in parts}
    print(
        f"setup {time.monotonic() - t0:.1f}s: {args.rows} window rows in {args.parts} parts"
        f" ({sum(sizes.values()) / 2**20:.1f} MiB Parquet), other rows {args.other_rows},"
        f" database {_db_files(db)}",
        flush=True,
    )

    # Two runs without a kill: how long each phase takes on this machine.
    runs: list[Run] = []
    phases: dict[str, list[float]] = {"transaction": [], "commit": [], "close": []}
    for k in range(2):
        run = Run(index=len(runs), run_id=f"run-{len(runs) + 1}", plan="none", delay_ms=0.0)
        _one_run(run, db, parts, args.mode, timeout_s=600)
        _check(db, run, args.rows, args.other_rows)
        runs.append(run)
        m = run.markers_ms
        phases["transaction"].append(m["PRECOMMIT"] - m["BEGIN"])
        phases["commit"].append(m["COMMITTED"] - m["PRECOMMIT"])
        phases["close"].append(m["CLOSED"] - m["COMMITTED"])
        print(f"calibration {k}: ok={run.ok} markers (ms since spawn) {m}", flush=True)
    phase_ms = {name: statistics.mean(values) for name, values in phases.items()}
    print(
        f"BEGIN->PRECOMMIT ~{phase_ms['transaction']:.0f} ms, COMMIT ~{phase_ms['commit']:.0f} ms,"
        f" COMMITTED->CLOSED (settings + close) ~{phase_ms['close']:.0f} ms",
        flush=True,
    )
    commit_window = 1.1 * (phase_ms["commit"] + phase_ms["close"])

    kills = 0
    bad = 0
    landed_in = {"in_transaction": 0, "commit": 0, "close": 0, "after_close": 0}
    with log_path.open("a") as log:
        for run in runs:
            log.write(json.dumps(asdict(run)) + "\n")
        while kills < args.kills:
            if args.max_minutes is not None and time.monotonic() - t0 > args.max_minutes * 60:
                print("time budget reached", flush=True)
                break
            draw = rng.random()
            if draw < args.in_transaction_fraction:
                plan, delay = "in_transaction", rng.uniform(0, phase_ms["transaction"])
            elif draw < args.in_transaction_fraction + args.after_commit_fraction:
                plan, delay = "after_commit", rng.uniform(0, args.delay_max_ms)
            else:
                plan, delay = "commit", rng.uniform(0, commit_window)
            run = Run(index=len(runs), run_id=f"run-{len(runs) + 1}", plan=plan, delay_ms=delay)
            _one_run(run, db, parts, args.mode, timeout_s=600)
            if run.killed:
                kills += 1
                snapshot = work / "snapshot"
                shutil.rmtree(snapshot, ignore_errors=True)
                snapshot.mkdir()
                for name in _db_files(db):
                    shutil.copy2(db.parent / name, snapshot / name)
            try:
                _check(db, run, args.rows, args.other_rows)
            except duckdb.Error as error:
                run.ok = False
                run.error = f"reopen failed: {error}"
            if run.killed:
                if "COMMITTED" not in run.markers_ms:
                    landed_in[
                        "in_transaction" if "PRECOMMIT" not in run.markers_ms else "commit"
                    ] += 1
                elif "CLOSED" not in run.markers_ms:
                    landed_in["close"] += 1
                else:
                    landed_in["after_close"] += 1
            if not run.ok:
                bad += 1
                if run.killed:
                    kept = keep / f"violation_{run.index:04d}"
                    shutil.copytree(work / "snapshot", kept)
                    run.error = (run.error + f" kept {kept}").strip()
                _repair(db, parts)
            runs.append(run)
            log.write(json.dumps(asdict(run)) + "\n")
            log.flush()
            flag = "OK " if run.ok else "BAD"
            print(
                f"{flag} #{run.index} {plan:<14} delay {delay:6.1f} ms killed={run.killed!s:<5}"
                f" last={run.last_marker:<11} files={run.files_at_kill}"
                f" window={run.window_rows} ids={run.distinct_ids} by_run={run.rows_by_run}"
                f" {run.error}",
                flush=True,
            )
    summary: dict[str, Any] = {
        "duckdb": duckdb.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "seed": seed,
        "rows": args.rows,
        "parts": args.parts,
        "mode": args.mode,
        "other_rows": args.other_rows,
        "parquet_bytes": sum(sizes.values()),
        "runs": len(runs),
        "kills": kills,
        "kills_landed": landed_in,
        "violations": bad,
        "minutes": round((time.monotonic() - t0) / 60, 1),
        "phase_ms": {name: round(value) for name, value in phase_ms.items()},
        "plans": {plan: sum(1 for r in runs if r.plan == plan and r.killed) for plan in PLANS},
    }
    (keep / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
