"""`make bench`'s scaling section: the steady-state daily run against 13 months of a large org.

For each history size (about 1 M, 5 M and 20 M rows in `circleci.job_runs`):

1. *Setup* (timed, not part of the figures), in a process of its own: a seed week of simulator
   rows (the simulator's own generator, written as gzip CSV parts and loaded once through the
   real `load_window`) is replicated in DuckDB SQL over 13 months: whole weeks back, so weekdays
   stay weekdays, with new job, workflow and pipeline ids per copy and every date and timestamp
   shifted, thinned or repeated per workflow to reach the size; `circleci.day_loads` gets the rows
   a real load writes (31-day export windows). Then the daily insights tables are built for the
   whole history by the real `daily_usage.refresh` and `workflow_runs.refresh`, and the roll-ups
   once by the real `insights_rollups` asset.
2. *The daily run*, in a fresh process: a zero-delay simulator serves the next day (~50 k job
   runs, one gzip CSV part); its export is created by `usage_export_job` (not timed), then the
   real `download_and_load_usage` job runs in-process on that warehouse: download, load, checks,
   daily insights, default branches, roll-ups and report. Per step: wall time from the run's
   event log (the roll-up op is split per table by its materialization timestamps), peak RSS (a
   sampler thread reads VmRSS every 20 ms and charges it to the step running at that moment) and
   the peak size of DuckDB's temp (spill) folder.

Nothing is cached between runs: the seed and every history are rebuilt, so a code change is
always measured. Figures, not assertions: the targets are reported met or missed.

Alone: `python -m bench.run --scaling-only [--quick]`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"0.25M": 250_000, "1M": 1_000_000, "5M": 5_000_000, "20M": 20_000_000}
FULL_SIZES = ("1M", "5M", "20M")
# 1 M and 5 M took 16 minutes with their setup on the shared box (load average ~10): too slow for
# a local check, so --quick goes smaller. The growth verdict then compares 0.25 M with 1 M.
QUICK_SIZES = ("0.25M", "1M")
HISTORY_DAYS = 13 * 31  # CircleCI keeps 13 months
SEED_DAYS = 7  # one week, so every copy keeps the weekday pattern
WINDOW_DAYS = 31  # the history's day_loads as written by 31-day exports
ROWS_PER_DAY = 50_000  # the simulator's weekday mean: the new day is ~50 k job runs
ROWS_PER_PART = 1_000_000  # one part a day, as a daily export of this size ships
WALL_TARGET_S = 30.0
MEMORY_TARGET_MIB = 1024
GROWTH_TARGET = 1.5
SAMPLE_SECONDS = 0.02

# The rows of the printed table, and which event-log spans make each one up.
ROWS = (
    ("load", "download + load one day into job_runs"),
    ("checks", "job_runs checks"),
    ("insights_daily", "insights_daily (daily_usage, workflow_runs)"),
    ("default_branches", "project_default_branches"),
    ("job_performance", "job_performance"),
    ("workflow_performance", "workflow_performance"),
    ("other_rollups", "other roll-ups"),
    ("report", "report"),
)
_STEP_ROWS = {
    "raw_usage_files": "load",
    "job_runs": "load",
    "job_runs_checks": "checks",
    "insights_daily": "insights_daily",
    "project_default_branches": "default_branches",
}
_ROLLUP_ROWS = {
    "job_performance": "job_performance",
    "workflow_performance": "workflow_performance",
    "usage_report": "report",
}


def new_day(today: date) -> date:
    """The day the daily run loads: the latest Wednesday at least 3 days back, so it is a busy
    weekday (~50 k rows) whatever day the bench runs, and inside every export window rule."""
    day = today - timedelta(days=3)
    return day - timedelta(days=(day.weekday() - 2) % 7)


def day_start(day: date) -> datetime:
    return datetime.combine(day, day_time(0), tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# The seed: one week of simulator rows through the real load
# --------------------------------------------------------------------------------------------


def build_seed(folder: Path, first: date) -> int:
    """Load SEED_DAYS days of simulator rows from `first` into folder/seed.duckdb; returns rows."""
    import duckdb

    from usage_assets.ingest.job_runs_table import JOB_RUNS
    from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG, load_window
    from usage_assets.simulator.parts import write_parts
    from usage_assets.simulator.settings import DEFAULT_ORG_ID
    from usage_assets.simulator.synthetic import SyntheticUsage

    last = first + timedelta(days=SEED_DAYS - 1)
    end = day_start(last) + timedelta(days=1, seconds=-1)
    usage = SyntheticUsage(rows_per_day=ROWS_PER_DAY)  # the simulator's seed: the same org
    rows = usage.rows_for_export((DEFAULT_ORG_ID,), day_start(first), end, as_of=end + timedelta(2))
    parts = write_parts(rows, folder / "seed_parts", rows_per_part=ROWS_PER_PART)
    with duckdb.connect(str(folder / "seed.duckdb"), config=dict(WAREHOUSE_DUCKDB_CONFIG)) as conn:
        load_window(
            conn,
            [("bench-seed", part) for part in parts],
            window_start=first,
            window_end=last,
            run_id="bench-seed",
        )
        (count,) = conn.execute(f"SELECT count(*) FROM {JOB_RUNS}").fetchone() or (0,)
    return int(count)


# --------------------------------------------------------------------------------------------
# The history: the seed replicated in SQL
# --------------------------------------------------------------------------------------------

_NEW_IDS = ("job_id", "workflow_id", "pipeline_id")


def replica_select(columns: dict[str, str], seed_table: str) -> str:
    """SELECT of `seed_table`'s rows copied `copy` weeks back (parameters: copy, fraction,
    first, last: the history's days).

    Copy c is shifted 7*c days; copy 0 keeps the seed's own ids. Each (copy, replica) keeps a
    workflow when replica + u < fraction, u uniform in [0, 1) from a hash of the workflow: a
    fraction of 0.2 thins every week to a fifth, 1.3 repeats it 1.3 times, whole workflows
    always (the insights group job rows by workflow). Replicas past the first get new ids too.
    """
    shifted = []
    for name, sql_type in columns.items():
        if name in _NEW_IDS:
            shifted.append(
                f"CASE WHEN c = 0 AND r = 0 THEN {name} ELSE"
                f" md5({name} || '#' || c || '.' || r)::UUID::VARCHAR END AS {name}"
            )
        elif sql_type == "DATE":
            shifted.append(f"{name} - (7 * c)::INTEGER AS {name}")
        elif sql_type == "TIMESTAMPTZ" and name != "loaded_at":
            shifted.append(f"{name} - to_days((7 * c)::INTEGER) AS {name}")
        elif name == "export_job_id":
            shifted.append(f"'bench-history-' || w AS {name}")
        elif name == "load_run_id":
            shifted.append(f"'bench-history-load-' || w AS {name}")
        else:
            shifted.append(name)
    return f"""
        WITH copies AS (
            SELECT $copy::BIGINT AS c, r FROM range(ceil($fraction)::BIGINT) b(r)
        ), rows AS (
            SELECT s.*, c, r FROM {seed_table} s, copies
            WHERE r + (hash(s.workflow_id, c, r) % 1000000) / 1e6 < $fraction
        ), windowed AS (
            SELECT *, (($last - (usage_date - (7 * c)::INTEGER)) // {WINDOW_DAYS})::BIGINT AS w
            FROM rows
        )
        SELECT {", ".join(shifted)} FROM windowed
        WHERE usage_date - (7 * c)::INTEGER BETWEEN $first AND $last
    """


def build_history(folder: Path, target_rows: int, seed_first: date) -> dict[str, Any]:
    """folder/usage.duckdb: about `target_rows` job runs over HISTORY_DAYS days ending the day
    before the new day, with day_loads, the daily insights tables and the roll-ups built."""
    import duckdb

    from usage_assets.ingest.job_runs_table import (
        DAY_LOADS,
        JOB_RUNS,
        ensure_job_runs_table,
        job_runs_columns,
    )
    from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG
    from usage_assets.insights import daily_usage, workflow_runs

    last = seed_first + timedelta(days=SEED_DAYS - 1)
    first = last - timedelta(days=HISTORY_DAYS - 1)
    copies = math.ceil(HISTORY_DAYS / SEED_DAYS)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    database = folder / "usage.duckdb"
    with duckdb.connect(str(database), config=dict(WAREHOUSE_DUCKDB_CONFIG)) as conn:
        ensure_job_runs_table(conn)
        conn.execute(f"ATTACH '{folder / 'seed.duckdb'}' AS seed (READ_ONLY)")
        (seed_rows,) = conn.execute(f"SELECT count(*) FROM seed.{JOB_RUNS}").fetchone() or (0,)
        fraction = target_rows / (int(seed_rows) * HISTORY_DAYS / SEED_DAYS)
        # Oldest copy first, as daily loads would have appended them, so the table's row groups
        # are in date order and usage_date pruning (zone maps) works as on a real warehouse.
        select = replica_select(job_runs_columns(), "seed_rows")
        conn.execute(f"CREATE TEMP TABLE seed_rows AS SELECT * FROM seed.{JOB_RUNS}")
        conn.execute("BEGIN")
        for copy in reversed(range(copies)):
            conn.execute(
                f"INSERT INTO {JOB_RUNS} BY NAME {select}",
                {"copy": copy, "fraction": fraction, "first": first, "last": last},
            )
        conn.execute("COMMIT")
        conn.execute(
            f"INSERT INTO {DAY_LOADS}"
            " SELECT day::DATE, 'bench-history-' || w, ($last::DATE - (w * $window)::INTEGER + 1)::TIMESTAMPTZ,"
            " 'bench-history-load-' || w, now()"
            " FROM (SELECT day, (($last::DATE - day::DATE) // $window)::BIGINT AS w"
            "  FROM generate_series($first::DATE, $last::DATE, INTERVAL 1 DAY) t(day))",
            {"first": first, "last": last, "window": WINDOW_DAYS},
        )
        conn.execute("DETACH seed")
        conn.execute("CHECKPOINT")
        (rows,) = conn.execute(f"SELECT count(*) FROM {JOB_RUNS}").fetchone() or (0,)
        timings["replicate_s"] = time.perf_counter() - started
        mark = time.perf_counter()
        daily_usage.refresh(conn, first, last, "bench-history")
        timings["daily_usage_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        # In windows of 31 days, as the backfill's loads refresh it.
        day = first
        while day <= last:
            end = min(day + timedelta(days=WINDOW_DAYS - 1), last)
            workflow_runs.refresh(conn, day, end, "bench-history")
            day = end + timedelta(days=1)
        timings["workflow_runs_s"] = time.perf_counter() - mark
        (workflows,) = conn.execute(
            f"SELECT count(*) FROM {workflow_runs.WORKFLOW_RUNS}"
        ).fetchone() or (0,)
    mark = time.perf_counter()
    _materialize_rollups(folder)
    timings["rollups_s"] = time.perf_counter() - mark
    timings["setup_s"] = time.perf_counter() - started
    return {
        "job_runs": int(rows),
        "workflow_runs": int(workflows),
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "fraction_of_seed_week": round(fraction, 3),
        "duckdb_file_mib": round(database.stat().st_size / 2**20),
        **{k: round(v, 1) for k, v in timings.items()},
    }


def _materialize_rollups(folder: Path) -> None:
    """The roll-ups and the report once, through the real asset (as the first daily run would)."""
    import dagster as dg

    from usage_assets.defs.insights.assets import insights_rollups

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [insights_rollups], resources=_resources(folder, api_url=""), instance=instance
        )
    if not result.success:
        raise RuntimeError("the history's roll-ups failed")


def _resources(folder: Path, api_url: str) -> dict[str, Any]:
    """The code location's resources for a warehouse in `folder` (the real DuckDB config)."""
    from usage_assets.config import DEFAULT_REFERENCE_DIR
    from usage_assets.defs.resources import (
        CircleCIUsageResource,
        InsightsResource,
        PostQuotaResource,
        RawStoreResource,
        WarehouseResource,
    )
    from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG
    from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN

    return {
        "circleci": CircleCIUsageResource(
            token=DEFAULT_TOKEN, org_id=DEFAULT_ORG_ID, api_url=api_url or "http://127.0.0.1:9"
        ),
        "post_quota": PostQuotaResource(ledger_path=str(folder / "quota.sqlite"), max_posts=10),
        "raw_store": RawStoreResource(raw_dir=str(folder / "raw")),
        "warehouse": WarehouseResource(
            database=str(folder / "usage.duckdb"), connection_config=dict(WAREHOUSE_DUCKDB_CONFIG)
        ),
        "insights": InsightsResource(
            reference_dir=str(DEFAULT_REFERENCE_DIR), report_path=str(folder / "report.html")
        ),
    }


# --------------------------------------------------------------------------------------------
# The daily run, sampled
# --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # time.time(), as the event log's timestamps
    rss_mib: float
    temp_bytes: int


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())
    except OSError:  # not there (nothing spilled) or a file gone while listed
        return 0


@contextmanager
def sampled(temp_dir: Path) -> Iterator[list[Sample]]:
    """VmRSS and the size of DuckDB's temp folder every SAMPLE_SECONDS, while the block runs."""
    samples: list[Sample] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(Sample(time.time(), _rss_mib(), _folder_bytes(temp_dir)))
            stop.wait(SAMPLE_SECONDS)

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def spans_from_events(
    events: Sequence[tuple[float, str | None, str, str | None]],
) -> list[tuple[str, float, float]]:
    """(row, start, end) spans from (timestamp, step key, event type, asset name) tuples.

    A step's span runs from its STEP_START to its STEP_SUCCESS (or failure). The roll-up step is
    cut at each materialization: the table materialized at the end of a piece names it (its
    check, evaluated after the yield, falls into the next piece, and the last check into the
    report's)."""
    spans: list[tuple[str, float, float]] = []
    starts: dict[str, float] = {}
    for at, step, kind, asset in events:
        if step is None:
            continue
        if kind == "STEP_START":
            starts[step] = at
        elif kind == "ASSET_MATERIALIZATION" and step == "insights_rollups" and asset:
            row = _ROLLUP_ROWS.get(asset, "other_rollups")
            spans.append((row, starts[step], at))
            starts[step] = at
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step in starts:
            # Checks of job_runs in steps of their own (the freshness check) count as checks.
            default = "checks" if "check" in step else step
            row = "report" if step == "insights_rollups" else _STEP_ROWS.get(step, default)
            spans.append((row, starts.pop(step), at))
    return spans


def per_row(
    spans: Sequence[tuple[str, float, float]], samples: Sequence[Sample]
) -> dict[str, dict[str, float]]:
    """Seconds, peak RSS and peak temp bytes of each table row (its spans summed)."""
    rows: dict[str, dict[str, float]] = {}
    for row, start, end in spans:
        inside = [s for s in samples if start <= s.at <= end]
        entry = rows.setdefault(row, {"wall_s": 0.0, "peak_rss_mib": 0.0, "temp_mib": 0.0})
        entry["wall_s"] += end - start
        if inside:
            entry["peak_rss_mib"] = max(entry["peak_rss_mib"], max(s.rss_mib for s in inside))
            top = max(s.temp_bytes for s in inside) / 2**20
            entry["temp_mib"] = max(entry["temp_mib"], top)
    return {
        row: {key: round(value, 2 if key == "wall_s" else 0) for key, value in entry.items()}
        for row, entry in rows.items()
    }


def daily_run(folder: Path, day: date) -> dict[str, Any]:
    """Create the export of `day` (not timed), then run download_and_load_usage for it."""
    import dagster as dg

    from usage_assets.defs.constants import range_tags
    from usage_assets.defs.insights.assets import insights_daily, insights_rollups
    from usage_assets.defs.insights.default_branches import project_default_branches
    from usage_assets.defs.usage.export_jobs import usage_export_job
    from usage_assets.defs.usage.job_runs import job_runs
    from usage_assets.defs.usage.jobs import download_and_load_usage
    from usage_assets.defs.usage.raw_files import raw_usage_files
    from usage_assets.simulator.server import SimulatorServer
    from usage_assets.simulator.settings import SimulatorSettings

    settings = SimulatorSettings(
        processing_time=timedelta(0),
        rows_per_day=ROWS_PER_DAY,
        rows_per_part=ROWS_PER_PART,
        get_limit=10_000,
    )
    key = day.isoformat()
    with SimulatorServer(settings) as sim, dg.instance_for_test() as instance:
        resources = _resources(folder, sim.base_url)
        created = dg.materialize(
            [usage_export_job], resources=resources, instance=instance, tags=range_tags(key, key)
        )
        (export,) = created.asset_materializations_for_node("usage_export_job")
        sim.simulator.store.wait_until_written(str(export.metadata["export_job_id"].value), 600)
        defs = dg.Definitions(
            assets=[
                usage_export_job,
                raw_usage_files,
                job_runs,
                insights_daily,
                project_default_branches,
                insights_rollups,
            ],
            asset_checks=_job_runs_checks(),
            jobs=[download_and_load_usage],
            resources=resources,
        )
        job = defs.resolve_job_def(download_and_load_usage.name)
        temp_dir = Path(f"{folder / 'usage.duckdb'}.tmp")  # DuckDB's default for a file
        started = time.perf_counter()
        with sampled(temp_dir) as samples:
            result = job.execute_in_process(
                instance=instance, tags=range_tags(key, key), raise_on_error=False
            )
        wall = time.perf_counter() - started
        events = [
            (
                entry.timestamp,
                entry.step_key,
                entry.dagster_event.event_type_value,
                entry.dagster_event.asset_key.path[-1]
                if entry.dagster_event.asset_key is not None
                else None,
            )
            for entry in instance.all_logs(result.run_id)
            if entry.dagster_event is not None
        ]
        loaded = 0
        for materialization in result.asset_materializations_for_node("job_runs"):
            value = materialization.metadata.get("rows_loaded")
            loaded += value.value if value is not None and isinstance(value.value, int) else 0
    # Why a run failed, so a failed size says more than FAILED (the step and its error's first
    # line; the package's errors carry no secrets).
    failures = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip().splitlines()[0]}"
        for event in result.all_events
        if event.is_step_failure
        and event.step_failure_data.error is not None
        and event.step_failure_data.error.message.strip()
    ]
    return {
        "day": key,
        "success": result.success,
        "failures": failures,
        "rows_loaded": loaded,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(max((s.rss_mib for s in samples), default=0.0)),
        "temp_mib": round(max((s.temp_bytes for s in samples), default=0) / 2**20),
        "steps": per_row(spans_from_events(events), samples),
    }


def _job_runs_checks() -> list[Any]:
    """Every asset check the code location defines on job_runs (the load's, the freshness
    check, and any table-wide ones), so the job's selection resolves as in the code location."""
    import dagster as dg

    from usage_assets.defs.usage import checks

    found: list[Any] = []
    for value in vars(checks).values():
        candidates = value if isinstance(value, list | tuple) else [value]
        found += [c for c in candidates if isinstance(c, dg.AssetChecksDefinition)]
    return list({id(c): c for c in found}.values())


# --------------------------------------------------------------------------------------------
# The section: one process per setup and per daily run, so each peak RSS is its own
# --------------------------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scaling", *args], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.scaling {' '.join(args)} failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_scaling(quick: bool = False) -> dict[str, Any]:
    """The section's figures, for FULL_SIZES (QUICK_SIZES with `quick`)."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    day = new_day(datetime.now(UTC).date())
    seed_first = day - timedelta(days=SEED_DAYS)
    started = time.perf_counter()
    results: dict[str, Any] = {"new_day": day.isoformat(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        seed = Path(tmp) / "seed"
        seed.mkdir()
        mark = time.perf_counter()
        results["seed_rows"] = _child("seed", str(seed), seed_first.isoformat())["rows"]
        results["seed_s"] = round(time.perf_counter() - mark, 1)
        for label in sizes:
            folder = Path(tmp) / label
            folder.mkdir()
            (folder / "seed.duckdb").symlink_to(seed / "seed.duckdb")
            history = _child("history", str(folder), str(SIZES[label]), seed_first.isoformat())
            mark = time.perf_counter()
            run = _child("daily", str(folder), day.isoformat())
            # The daily process's whole life: start-up, the simulator's part, the export, the run.
            run["process_s"] = round(time.perf_counter() - mark, 1)
            results["sizes"][label] = {"history": history, "run": run}
            # Each size as it finishes: a 20 M run takes a while, and an interrupted one keeps
            # the sizes done so far.
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "scaling_partial.json").write_text(json.dumps(results, indent=2))
            for leftover in folder.glob("*"):  # one warehouse on disk at a time (2.5 GB at 20 M)
                if leftover.is_file() and not leftover.is_symlink():
                    leftover.unlink()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = scaling_verdicts(results["sizes"])
    return results


def scaling_verdicts(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    largest = "20M" if "20M" in sizes else max(sizes, key=lambda s: SIZES[s], default=None)
    if largest is None:
        return out
    run = sizes[largest]["run"]
    out.append(
        {
            "target": f"daily run at {largest} under {WALL_TARGET_S:.0f} s",
            "measured": f"{run['wall_s']:.1f} s",
            "met": run["success"] and run["wall_s"] < WALL_TARGET_S,
        }
    )
    out.append(
        {
            "target": f"daily run at {largest} under {MEMORY_TARGET_MIB} MiB",
            "measured": f"{run['peak_rss_mib']} MiB",
            "met": run["peak_rss_mib"] < MEMORY_TARGET_MIB,
        }
    )
    smallest = min(sizes, key=lambda s: SIZES[s])
    if smallest != largest:
        small, big = sizes[smallest]["run"]["steps"], run["steps"]
        growth = {
            row: big[row]["wall_s"] / small[row]["wall_s"]
            for row, _ in ROWS
            if row in small and row in big and small[row]["wall_s"] > 0
        }
        worst = max(growth, key=lambda row: growth[row])
        out.append(
            {
                "target": f"no step grows more than {GROWTH_TARGET}x from {smallest} to {largest}",
                "measured": f"worst: {worst} {growth[worst]:.2f}x; "
                + ", ".join(f"{row} {g:.2f}x" for row, g in growth.items()),
                "met": growth[worst] <= GROWTH_TARGET,
            }
        )
    return out


def print_scaling(section: dict[str, Any]) -> None:
    sizes = section["sizes"]
    labels = list(sizes)
    print()
    print(f"Scaling with history: the daily run of {section['new_day']} (seconds / peak MiB)")
    head = "".join(
        f"{label + ' (' + format(sizes[label]['history']['job_runs'] / 1e6, '.1f') + ' M rows)':>24}"
        for label in labels
    )
    print(f"{'step':<46}{head}")
    for row, title in ROWS:
        cells = ""
        for label in labels:
            step = sizes[label]["run"]["steps"].get(row)
            cells += f"{'-' if step is None else _cell(step):>24}"
        print(f"{title:<46}{cells}")
    whole = "".join(f"{_cell(sizes[label]['run']):>24}" for label in labels)
    print(f"{'whole run (in-process)':<46}{whole}")
    temp = "".join(f"{str(sizes[label]['run']['temp_mib']) + ' MiB':>24}" for label in labels)
    print(f"{'DuckDB temp folder, peak':<46}{temp}")
    setup = "".join(f"{str(sizes[label]['history']['setup_s']) + ' s':>24}" for label in labels)
    print(f"{'setup (history + insights + roll-ups)':<46}{setup}")
    for label in labels:
        h, run = sizes[label]["history"], sizes[label]["run"]
        print(
            f"  {label}: {h['job_runs']:,} job runs {h['first_day']} .. {h['last_day']}, "
            f"{h['workflow_runs']:,} workflow runs, {h['duckdb_file_mib']} MiB file; new day "
            f"{run['rows_loaded']:,} rows, run {'succeeded' if run['success'] else 'FAILED'}"
        )
        for failure in run.get("failures", []):
            print(f"    {failure}")
    for verdict in section["targets"]:
        print(
            f"  {'MET ' if verdict['met'] else 'MISSED'}  {verdict['target']}: {verdict['measured']}"
        )
    print(f"  section wall time {section['wall_s']} s (seed week {section['seed_s']} s)")
    print()
    print(scaling_markdown(section))


def scaling_markdown(section: dict[str, Any]) -> str:
    """The section's table as the README shows it (paste after a run)."""
    sizes = section["sizes"]
    labels = list(sizes)
    lines = [
        "| step of the daily run | "
        + " | ".join(f"{sizes[label]['history']['job_runs'] / 1e6:.1f} M rows" for label in labels)
        + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    for row, title in (*ROWS, ("whole", "whole run, in-process")):
        cells = []
        for label in labels:
            run = sizes[label]["run"]
            step = run if row == "whole" else run["steps"].get(row)
            cells.append("-" if step is None else _cell(step))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append(
        "| DuckDB temp folder, peak | "
        + " | ".join(f"{sizes[label]['run']['temp_mib']:,} MiB" for label in labels)
        + " |"
    )
    lines.append(
        "| setup (history, insights, roll-ups) | "
        + " | ".join(f"{sizes[label]['history']['setup_s']:.0f} s" for label in labels)
        + " |"
    )
    return "\n".join(lines)


def _cell(entry: dict[str, Any]) -> str:
    return f"{entry['wall_s']:.1f} s / {entry['peak_rss_mib']:,.0f} MiB"


def main() -> None:
    """The child processes: `seed DIR FIRST`, `history DIR ROWS SEED_FIRST`, `daily DIR DAY`."""
    # As in the project's environment, where pandas is not installed (see bench.ingest_worker).
    sys.modules["pandas"] = None  # type: ignore[assignment]
    command, folder, *rest = sys.argv[1:]
    if command == "seed":
        out: dict[str, Any] = {"rows": build_seed(Path(folder), date.fromisoformat(rest[0]))}
    elif command == "history":
        out = build_history(Path(folder), int(rest[0]), date.fromisoformat(rest[1]))
    elif command == "daily":
        out = daily_run(Path(folder), date.fromisoformat(rest[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
