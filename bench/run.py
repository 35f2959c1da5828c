"""`make bench`: ingest speed and memory against DuckDB's own CSV reader and the peers' pandas
approach, quota economy of a 13-month backfill through the real daemon and sensor, the sensor's
tick cost with 50 pending jobs, window loads by 1, 2 and 4 concurrent writers on a DuckLake
against the DuckDB file (bench/lake_writers.py), and the daily run against 1 M, 5 M and 20 M rows
of history (bench/scaling.py). Prints a table and writes bench/results/latest.json.

Figures, not assertions: the targets are reported as met or missed, never enforced by a timed test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.exports import export_parts

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"0.5M": 500_000, "2M": 2_000_000}
METHODS = ("inflate", "duckdb_plain", "ours", "pandas")  # inflate: only gunzip, the floor
SPEED_TARGET = 1.25  # ours / DuckDB plain load
MEMORY_TARGET_MIB = 1024


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_worker(method: str, parts: list[Path]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.ingest_worker",
                method,
                str(Path(folder) / "bench.duckdb"),
                *map(str, parts),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_ingest(repeats: int) -> list[dict[str, Any]]:
    results = []
    for label, target in SIZES.items():
        parts = export_parts(target)
        size_mb = sum(p.stat().st_size for p in parts) / 1e6
        samples: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
        for _ in range(repeats):  # interleaved, so background load hits every method alike
            for method in METHODS:
                samples[method].append(run_worker(method, parts))
        for method in METHODS:
            walls = [s["wall_s"] for s in samples[method]]
            rows = samples[method][0]["rows"]
            wall = statistics.median(walls)
            results.append(
                {
                    "size": label,
                    "parts": len(parts),
                    "gzip_mb": round(size_mb, 1),
                    "method": method,
                    "rows": rows,
                    "wall_s": wall,
                    "wall_s_samples": walls,
                    "rows_per_s": round(rows / wall),
                    "peak_rss_mib": max(s["peak_rss_mib"] for s in samples[method]),
                }
            )
    return results


def bench_backfill(days: int) -> dict[str, Any]:
    """A backfill of `days` days through `dagster dev`: POSTs spent, runs, time to fully loaded."""
    import dagster as dg

    from usage_assets.defs.partitions import MAX_PARTITIONS_PER_EXPORT, partition_keys_between
    from usage_assets.defs.usage.jobs import download_and_load_usage
    from usage_assets.dev.local_stack import local_stack
    from usage_assets.simulator.server import SimulatorServer
    from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings

    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    keys = partition_keys_between(first, today - timedelta(days=1))
    exports = math.ceil(len(keys) / MAX_PARTITIONS_PER_EXPORT)
    settings = SimulatorSettings(
        processing_time=timedelta(0), rows_per_day=20, post_quota=exports + 5
    )
    env = {"USAGE_START_DATE": first.isoformat(), "USAGE_POST_QUOTA": str(exports + 5)}
    with (
        tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder,
        SimulatorServer(settings) as sim,
        local_stack(Path(folder), simulator=sim, extra_env=env) as stack,
    ):
        started = time.perf_counter()
        since = datetime.now(UTC)
        backfill = stack.launch_backfill("usage_export_job", keys)
        stack.wait_for_backfill(backfill, timeout=1800)
        runs = stack.wait_for_runs(
            download_and_load_usage.name, exports, timeout=1800, created_after=since
        )
        wall = time.perf_counter() - started
        with stack.instance() as instance:
            all_runs = instance.get_runs(filters=dg.RunsFilter(created_after=since))
        posts = sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC))
    return {
        "days": len(keys),
        "posts": posts,
        "posts_target": exports,
        "days_per_post": round(len(keys) / max(posts, 1), 1),
        "runs_launched": len(all_runs),
        "download_runs": len(runs),
        "wall_s_until_loaded": round(wall, 1),
    }


def bench_sensor(pending: int, ticks: int) -> dict[str, Any]:
    """Tick time and GETs with `pending` export jobs in flight (in-process sensor evaluations)."""
    import dagster as dg

    from usage_assets.circleci import UsageApiClient
    from usage_assets.config import current_config
    from usage_assets.defs.constants import EXPORT_ASSET_KEY, EXPORT_ID_METADATA
    from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource
    from usage_assets.defs.usage.sensors import build_usage_export_sensor
    from usage_assets.simulator.server import SimulatorServer
    from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN, SimulatorSettings

    settings = SimulatorSettings(
        processing_time=timedelta(hours=2), rows_per_day=5, post_quota=pending + 1, get_limit=10_000
    )
    usage_export_job_sensor = build_usage_export_sensor(
        minimum_interval_seconds=current_config().sensor_interval_seconds,
        max_gets_per_tick=current_config().sensor_max_gets_per_tick,
    )
    today = datetime.now(UTC).date()
    tick_seconds: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-sensor-") as folder,
        SimulatorServer(settings) as sim,
        dg.instance_for_test() as instance,
    ):
        with UsageApiClient(DEFAULT_TOKEN, DEFAULT_ORG_ID, base_url=sim.base_url) as client:
            for offset in range(pending):
                day = today - timedelta(days=offset + 2)
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                export = client.create_export(start, start + timedelta(days=1, seconds=-1))
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        EXPORT_ASSET_KEY,
                        partition=day.isoformat(),
                        metadata={EXPORT_ID_METADATA: export.id},
                    )
                )
        resources = {
            "circleci": CircleCIUsageResource(
                token=DEFAULT_TOKEN, org_id=DEFAULT_ORG_ID, api_url=sim.base_url
            ),
            "post_quota": PostQuotaResource(
                ledger_path=str(Path(folder) / "quota.sqlite"), max_posts=pending + 1
            ),
        }
        gets_before = sim.simulator.store.get_limiter.used(
            f"get:{DEFAULT_ORG_ID}", datetime.now(UTC)
        )
        cursor = None
        for _ in range(ticks):
            started = time.perf_counter()
            result = usage_export_job_sensor(
                dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            )
            tick_seconds.append(time.perf_counter() - started)
            cursor = result.cursor  # type: ignore[union-attr]
        gets = (
            sim.simulator.store.get_limiter.used(f"get:{DEFAULT_ORG_ID}", datetime.now(UTC))
            - gets_before
        )
    config = current_config()
    per_tick = gets / ticks
    return {
        "pending_jobs": pending,
        "ticks": ticks,
        "tick_s_median": round(statistics.median(tick_seconds), 3),
        "tick_s_max": round(max(tick_seconds), 3),
        "gets_per_tick": per_tick,
        "sensor_interval_s": config.sensor_interval_seconds,
        "gets_per_minute": round(per_tick * 60 / config.sensor_interval_seconds, 1),
        "ticks_to_poll_every_job_once": math.ceil(pending / per_tick) if per_tick else None,
        "api_get_limit_documented": "10/min per path (terraform provider) or 10/hour per org (spec since 2025-04)",
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, {report['machine']['memory_gib']} GiB"
    )
    if "lake" in report:
        from bench.lake_writers import print_lake

        print_lake(report["lake"])
    if "scaling" in report:
        from bench.scaling import print_scaling

        print_scaling(report["scaling"])
    if "ingest" not in report:
        return
    print()
    print(f"{'size':<6}{'method':<14}{'rows':>10}{'wall s':>9}{'rows/s':>10}{'peak MiB':>10}")
    for row in report["ingest"]:
        print(
            f"{row['size']:<6}{row['method']:<14}{row['rows']:>10}{row['wall_s']:>9.2f}{row['rows_per_s']:>10}{row['peak_rss_mib']:>10}"
        )
    for verdict in report["targets"]:
        print(
            f"  {'MET ' if verdict['met'] else 'MISSED'}  {verdict['target']}: {verdict['measured']}"
        )
    if "backfill" in report:
        b = report["backfill"]
        print()
        print(
            f"Backfill of {b['days']} days: {b['posts']} POSTs (target <= {b['posts_target']}), "
            f"{b['runs_launched']} runs, {b['wall_s_until_loaded']} s until loaded"
        )
    if "sensor" in report:
        s = report["sensor"]
        print(
            f"Sensor with {s['pending_jobs']} pending jobs: tick {s['tick_s_median']} s median ({s['tick_s_max']} s max), "
            f"{s['gets_per_tick']:.0f} GETs/tick = {s['gets_per_minute']} GETs/min at a {s['sensor_interval_s']} s interval"
        )


def verdicts(ingest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for size in SIZES:
        by_method = {r["method"]: r for r in ingest if r["size"] == size}
        ratio = by_method["ours"]["wall_s"] / by_method["duckdb_plain"]["wall_s"]
        out.append(
            {
                "target": f"{size}: ours within {SPEED_TARGET}x of DuckDB's plain load",
                "measured": f"{ratio:.2f}x",
                "met": ratio <= SPEED_TARGET,
            }
        )
        rss = by_method["ours"]["peak_rss_mib"]
        out.append(
            {
                "target": f"{size}: peak RSS under {MEMORY_TARGET_MIB} MiB",
                "measured": f"{rss} MiB",
                "met": rss < MEMORY_TARGET_MIB,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--backfill-days", type=int, default=365)
    parser.add_argument("--skip-lake", action="store_true", help="no DuckLake writers section")
    parser.add_argument(
        "--lake-only", action="store_true", help="only the DuckLake writers section (~3 min)"
    )
    parser.add_argument("--skip-scaling", action="store_true", help="no scaling section")
    parser.add_argument(
        "--scaling-only",
        action="store_true",
        help="only the scaling section (merged into latest.json; 30+ min at 20 M rows)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="scaling section at 0.25 M and 1 M rows only"
    )
    parser.add_argument("--lake-windows", type=int, default=12)
    parser.add_argument("--lake-rows-per-day", type=int, default=5000)
    args = parser.parse_args()

    report: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    if args.scaling_only:
        from bench.scaling import bench_scaling, print_scaling

        section = bench_scaling(quick=args.quick)
        RESULTS.mkdir(exist_ok=True)
        latest = RESULTS / "latest.json"
        # The other sections' figures stay: only this section's are replaced.
        merged = json.loads(latest.read_text()) if latest.exists() else report
        merged["scaling"] = section
        latest.write_text(json.dumps(merged, indent=2))
        print_scaling(section)
        print(f"\nResults: {latest}")
        return
    if not args.lake_only:
        report["ingest"] = bench_ingest(args.repeats)
        report["targets"] = verdicts(report["ingest"])
        report["sensor"] = bench_sensor(pending=50, ticks=12)
        if not args.skip_backfill:
            report["backfill"] = bench_backfill(args.backfill_days)
    if not args.lake_only and not args.skip_scaling:
        from bench.scaling import bench_scaling

        report["scaling"] = bench_scaling(quick=args.quick)
    if not args.skip_lake:
        report["lake"] = run_lake_section(args.lake_windows, args.lake_rows_per_day)
    RESULTS.mkdir(exist_ok=True)
    name = "lake.json" if args.lake_only else "latest.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"\nResults: {RESULTS / name}")


def run_lake_section(windows: int, rows_per_day: int) -> dict[str, Any]:
    """The DuckLake section, on $USAGE_TEST_POSTGRES_URL or a throwaway local server."""
    from bench.lake_writers import bench_lake
    from usage_assets_tests.postgres import server_url

    with server_url() as url:
        return bench_lake(url, windows=windows, rows_per_day=rows_per_day)


if __name__ == "__main__":
    main()
