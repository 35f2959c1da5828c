"""`make demo`: the whole pipeline, end to end, against the embedded simulator, then a summary.

Starts the simulator and `dagster dev` (webserver + daemon), launches a backfill of the last
DEMO_DAYS days of `usage_export_job` exactly as the UI would, lets the real sensor pick up the export
jobs and launch their download-and-load runs, and prints what landed in DuckDB. State lives in
`.demo/` (git-ignored), so running it again replaces the same days instead of duplicating them.
"""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from usage_assets.config import current_config
from usage_assets.local_stack import REPO_ROOT, local_stack
from usage_assets.partitions import MAX_PARTITIONS_PER_EXPORT, partition_keys_between
from usage_assets.quota_ledger import PostQuotaLedger
from usage_assets.sensors import download_and_load_usage
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings

DEMO_DAYS = 45


def summarize(warehouse: Path, ledger: PostQuotaLedger, first_day: str, last_day: str) -> str:
    lines: list[str] = []
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        per_day = conn.execute(
            "SELECT usage_date, count(*), sum(total_credits) FROM circleci.job_runs"
            " WHERE usage_date BETWEEN ? AND ? GROUP BY usage_date ORDER BY usage_date",
            [first_day, last_day],
        ).fetchall()
        top = conn.execute(
            "SELECT project_name, count(*), sum(total_credits) AS credits FROM circleci.job_runs"
            " WHERE usage_date BETWEEN ? AND ? GROUP BY project_name ORDER BY credits DESC LIMIT 5",
            [first_day, last_day],
        ).fetchall()
        total = conn.execute(
            "SELECT count(*), count(DISTINCT job_id) FROM circleci.job_runs"
        ).fetchone()
    lines.append(f"Rows and credits per day ({first_day} .. {last_day}):")
    lines.append(f"  {'day':<12}{'rows':>8}{'credits':>12}")
    lines.extend(f"  {day!s:<12}{rows:>8}{credits:>12,.0f}" for day, rows, credits in per_day)
    lines.append("")
    lines.append("Top projects by credits:")
    lines.extend(
        f"  {name:<28}{rows:>8} runs{credits:>14,.0f} credits" for name, rows, credits in top
    )
    lines.append("")
    rows, distinct = total or (0, 0)
    lines.append(f"circleci.job_runs: {rows} rows, {distinct} distinct job ids")
    status = ledger.status()
    spent = sum(1 for a in ledger.attempts() if a["outcome"] == "created")
    lines.append(
        f"POSTs spent on this simulator: {spent}; quota left: {status.left} of {status.limit}"
    )
    lines.append(f"DuckDB warehouse: {warehouse}")
    lines.append(f"Raw export files: {warehouse.parent / 'raw'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="usage-demo", description=__doc__)
    parser.add_argument("--days", type=int, default=DEMO_DAYS)
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".demo")
    parser.add_argument("--rows-per-day", type=int, default=150)
    args = parser.parse_args(argv)

    today = datetime.now(UTC).date()
    keys = partition_keys_between(today - timedelta(days=args.days), today - timedelta(days=1))
    exports = math.ceil(len(keys) / MAX_PARTITIONS_PER_EXPORT)
    settings = SimulatorSettings(
        processing_time=timedelta(seconds=2), rows_per_day=args.rows_per_day
    )
    with SimulatorServer(settings) as sim:
        print(f"Simulator: {sim.base_url}", flush=True)
        with local_stack(args.work_dir, simulator=sim) as stack:
            print(
                f"Dagster UI: {stack.webserver_url} (DAGSTER_HOME={stack.dagster_home})", flush=True
            )
            started = datetime.now(UTC)
            backfill = stack.launch_backfill("usage_export_job", keys)
            print(
                f"Backfill {backfill}: {len(keys)} days -> {exports} export job(s), one POST each",
                flush=True,
            )
            stack.wait_for_backfill(backfill, timeout=600)
            print(
                "Export jobs created; waiting for the sensor to download and load them...",
                flush=True,
            )
            stack.wait_for_runs(
                download_and_load_usage.name, exports, timeout=900, created_after=started
            )
            ledger = PostQuotaLedger(
                stack.data_dir / "post_quota.sqlite",
                api_url=sim.base_url,
                org_id=DEFAULT_ORG_ID,
                limit=current_config().post_quota,
                window=timedelta(hours=current_config().post_quota_window_hours),
            )
            print()
            print(summarize(stack.data_dir / "usage.duckdb", ledger, keys[0], keys[-1]))


if __name__ == "__main__":
    main()
