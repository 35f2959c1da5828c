"""One ingest method, measured in a fresh process: `python -m bench.ingest_worker METHOD DB PART...`.

Each method runs alone in its own interpreter so its peak RSS is its own (ru_maxrss of the whole
process, imports included), and prints one JSON line: wall seconds, rows loaded, peak RSS in MiB.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import date
from pathlib import Path


def ours(db: Path, parts: list[Path]) -> int:
    """The pipeline's own load: polars cleaning per part, staging, de-dup, windowed replace."""
    import duckdb

    from usage_assets.ingest.job_runs_table import JOB_RUNS
    from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG, load_window

    with duckdb.connect(str(db), config=dict(WAREHOUSE_DUCKDB_CONFIG)) as conn:
        load_window(
            conn,
            [("bench-export", part) for part in parts],
            window_start=date(2000, 1, 1),
            window_end=date(2100, 1, 1),
            run_id="bench",
        )
        row = conn.execute(f"SELECT count(*) FROM {JOB_RUNS}").fetchone()
    return int(row[0]) if row else 0


def duckdb_plain(db: Path, parts: list[Path]) -> int:
    """DuckDB's own CSV reader into a table, no cleaning at all: the practical floor."""
    import duckdb

    files = ", ".join(f"'{part}'" for part in parts)
    with duckdb.connect(str(db)) as conn:
        conn.execute(f"CREATE TABLE raw_job_runs AS SELECT * FROM read_csv([{files}], header=true)")
        row = conn.execute("SELECT count(*) FROM raw_job_runs").fetchone()
    return int(row[0]) if row else 0


def pandas_peers(db: Path, parts: list[Path]) -> int:
    """What the scripts we replace do: pandas read_csv of every part, concat, drop duplicate
    JOB_IDs, write the frame into DuckDB."""
    import duckdb
    import pandas as pd

    frame = pd.concat([pd.read_csv(part, escapechar="\\", na_values=["\\N"]) for part in parts])
    frame = frame.drop_duplicates(subset="JOB_ID")
    with duckdb.connect(str(db)) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE raw_job_runs AS SELECT * FROM frame")
        row = conn.execute("SELECT count(*) FROM raw_job_runs").fetchone()
    return int(row[0]) if row else 0


def inflate(db: Path, parts: list[Path]) -> int:
    """Only decompress the parts (no parse, nothing written): the floor under every method, so
    the README can split the load's time into inflate and the rest. Counts lines, minus one
    header a part, which equals the rows as long as no field holds a newline (true of the
    simulator's parts)."""
    import zlib

    del db  # nothing is written
    lines = 0
    for part in parts:
        # zlib directly, in 1 MiB reads: gzip.open's line machinery would be measured otherwise.
        inflater = zlib.decompressobj(wbits=31)
        with part.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += inflater.decompress(chunk).count(b"\n")
                while inflater.unused_data:  # a concatenated gzip member
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    lines += inflater.decompress(rest).count(b"\n")
        lines += inflater.flush().count(b"\n") - 1
    return lines


METHODS = {
    "ours": ours,
    "duckdb_plain": duckdb_plain,
    "pandas": pandas_peers,
    "inflate": inflate,
}


def main() -> None:
    method, db, *parts = sys.argv[1:]
    if method != "pandas":
        # pandas is installed for the peers' method only; the project does not depend on it. Where
        # it is installed, DuckDB imports it at the first query with parameters (about 1 s and
        # 90 MiB here), so the other methods run as in the project's own environment: without it.
        sys.modules["pandas"] = None  # type: ignore[assignment]
    started = time.perf_counter()
    rows = METHODS[method](Path(db), [Path(p) for p in parts])
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "method": method,
                "wall_s": round(wall, 2),
                "rows": rows,
                "peak_rss_mib": round(peak_mib),
            }
        )
    )


if __name__ == "__main__":
    main()
