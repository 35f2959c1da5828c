"""`make demo`: the whole pipeline, end to end, against the embedded simulator, then a summary.

Starts the simulator and `dagster dev` (webserver + daemon), launches a backfill of the last
DEMO_DAYS days of `usage_export_job` exactly as the UI would, lets the real sensor pick up the export
jobs and launch their download-and-load runs (which also refresh the `circleci_insights` tables and
the HTML report), and prints a summary read from those tables. State lives in `.demo/`
(git-ignored), so running it again replaces the same days instead of duplicating them.
"""

from __future__ import annotations

import argparse
import calendar
import math
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.circleci.vocabulary import job_credits
from usage_assets.config import DEFAULT_REFERENCE_DIR, current_config
from usage_assets.defs.partitions import MAX_PARTITIONS_PER_EXPORT, partition_keys_between
from usage_assets.defs.usage.jobs import download_and_load_usage
from usage_assets.dev.local_stack import REPO_ROOT, LocalStack, local_stack
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.insights import cost, daily_usage, resource_class_rates
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings

DEMO_DAYS = 45
# Teams for the simulated projects, by a word in the project's name; the rest are "platform".
DEMO_TEAMS = (
    ("mobile", "mobile"),
    ("ios", "mobile"),
    ("companion", "mobile"),
    ("web", "web"),
    ("front", "web"),
    ("dashboard", "web"),
    ("store", "web"),
    ("docs", "web"),
    ("portal", "web"),
    ("handbook", "web"),
    ("api", "backend"),
    ("backend", "backend"),
    ("billing", "backend"),
    ("sdk", "backend"),
    ("cli", "backend"),
    ("client", "backend"),
    ("desktop", "desktop"),
    ("windows", "desktop"),
    ("ml", "data"),
    ("data", "data"),
    ("recommender", "data"),
    ("forecasting", "data"),
)


def demo_team(project: str) -> str:
    return next((team for word, team in DEMO_TEAMS if word in project), "platform")


REPORT_ASSET = dg.AssetKey("usage_report")


def write_demo_reference(folder: Path, sim: SimulatorServer, last_day: date) -> Path:
    """The shipped reference files plus a team mapping and budgets for the simulated org.

    The budgets are set near the simulated spend (from the simulator's own rows of the 28 days
    before `last_day`) so the forecast has something to say: the organization a little under
    its projected month, its two biggest projects comfortably over theirs. Budgets compare with
    job credits (seat fees left out, as `forecast` does), so they are set from job credits too.
    """
    shutil.copytree(DEFAULT_REFERENCE_DIR, folder, dirs_exist_ok=True)
    start = datetime.combine(last_day - timedelta(days=27), time(0), tzinfo=UTC)
    end = datetime.combine(last_day, time(23, 59, 59), tzinfo=UTC)
    project = EXPORT_COLUMN_NAMES.index("PROJECT_NAME")
    credits = EXPORT_COLUMN_NAMES.index("TOTAL_CREDITS")
    seats = EXPORT_COLUMN_NAMES.index("USER_CREDITS")
    org = EXPORT_COLUMN_NAMES.index("ORGANIZATION_NAME")
    by_project: dict[str, float] = defaultdict(float)
    org_name = ""
    for row in sim.simulator.store.usage.rows_for_window(
        (DEFAULT_ORG_ID,), start, end, as_of=datetime.now(UTC)
    ):
        by_project[row[project]] += job_credits(float(row[credits]), float(row[seats]))
        org_name = row[org]
    month_days = calendar.monthrange(last_day.year, last_day.month)[1]
    monthly = {name: total * month_days / 28 for name, total in by_project.items()}
    ranked = sorted(monthly, key=lambda name: -monthly[name])
    (folder / "team_mapping.csv").write_text(
        "# Written by make demo for the simulated organization.\nproject_name,team\n"
        + "".join(f"{name},{demo_team(name)}\n" for name in ranked)
    )
    month = f"{last_day:%Y-%m}"
    lines = [f"{month},{org_name},,{round(sum(monthly.values()) * 0.9, -3):.0f}"]
    lines += [
        f"{month},{org_name},{name},{round(monthly[name] * 1.2, -3):.0f}" for name in ranked[:2]
    ]
    (folder / "budgets.csv").write_text(
        "# Written by make demo: budgets near the simulated spend.\n"
        "month,organization,project_name,credits\n" + "\n".join(lines) + "\n"
    )
    return folder


def report_path(stack: LocalStack, after: datetime) -> Path:
    """The report file, as recorded in the metadata of `usage_report`'s latest materialization."""
    with stack.instance() as instance:
        event = instance.get_latest_materialization_event(REPORT_ASSET)
    if event is None or event.timestamp < after.timestamp() or event.asset_materialization is None:
        raise RuntimeError(f"usage_report was not materialized by this demo; see {stack.log_path}")
    return Path(str(event.asset_materialization.metadata["report_path"].value))


TOP_PROJECTS = 5


def summarize(warehouse: Path, ledger: PostQuotaLedger, first_day: str, last_day: str) -> str:
    """The demo's summary, read from the circleci_insights tables."""
    lines: list[str] = []
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        per_day = daily_usage.per_day(conn, first, last)
        top = cost.top_projects(conn, first, last, TOP_PROJECTS)
        seat_fees = cost.seat_fees(conn, first, last)
        forecast = conn.execute(
            "SELECT month, coalesce(project_name, '(organization) ' || organization_name),"
            " mtd_credits, projected_month_credits, budget_credits, budget_status"
            " FROM circleci_insights.credit_forecast"
            " ORDER BY scope = 'project', projected_month_credits DESC LIMIT 6"
        ).fetchall()
        sizing = conn.execute(
            "SELECT count(*) FILTER (WHERE recommendation = 'downsize'),"
            " coalesce(sum(est_credits_saved_per_month), 0),"
            " count(*) FILTER (WHERE recommendation = 'at_ceiling')"
            " FROM circleci_insights.right_sizing"
        ).fetchone()
        total = conn.execute(
            "SELECT count(*), count(DISTINCT job_id) FROM circleci.job_runs"
        ).fetchone()
        rates = [r for r in resource_class_rates.read(conn).values() if r.fitted_rate is not None]
    lines.append(
        f"Job runs and credits per day ({first_day} .. {last_day}, circleci_insights.daily_usage):"
    )
    lines.append(f"  {'day':<12}{'job runs':>10}{'credits':>12}")
    lines.extend(f"  {day!s:<12}{rows:>10}{credits:>12,.0f}" for day, rows, credits in per_day)
    lines.append("")
    lines.append(
        "Top projects by job credits and estimated cost, then seat fees (org-level)"
        " (circleci_insights.daily_usage, credit_costs):"
    )
    lines.extend(
        f"  {p.project:<22}{p.team:<10}{p.job_runs:>7} runs{p.credits:>13,.0f} credits"
        + (f"{p.cost:>11,.2f} {p.currency}" if p.cost is not None else "   no price")
        for p in top
    )
    lines.extend(
        f"  {'seat fees (' + s.organization + ')':<44}{s.credits:>13,.0f} credits"
        + (f"{s.cost:>11,.2f} {s.currency}" if s.cost is not None else "   no price")
        for s in seat_fees
    )
    lines.append("")
    if forecast:
        lines.append(f"Forecast for {forecast[0][0]:%B %Y} (circleci_insights.credit_forecast):")
        lines.append(f"  {'':<36}{'to date':>12}{'projected':>12}{'budget':>12}  status")
        lines.extend(
            f"  {name:<36}{mtd:>12,.0f}{projected:>12,.0f}"
            f"{'' if budget is None else f'{budget:,.0f}':>12}  {status}"
            for _, name, mtd, projected, budget, status in forecast
        )
        lines.append("")
    downsize, saved, ceiling = sizing or (0, 0.0, 0)
    lines.append(
        f"Right-sizing: {downsize} job(s) could use a smaller class, saving about {saved:,.0f}"
        f" credits a month; {ceiling} job(s) at their CPU or RAM ceiling"
    )
    differing = [
        resource_class_rates.describe(r) for r in rates if resource_class_rates.disagrees(r)
    ]
    lines.append(
        f"Credits per minute fitted for {len(rates)} resource class(es)"
        " (circleci_insights.resource_class_rates); differing from resource_classes.csv: "
        + ("; ".join(differing) or "none")
    )
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
        reference = write_demo_reference(
            args.work_dir / "reference", sim, date.fromisoformat(keys[-1])
        )
        with local_stack(
            args.work_dir, simulator=sim, extra_env={"USAGE_REFERENCE_DIR": str(reference)}
        ) as stack:
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
                "Export jobs created; waiting for the sensor to download and load them"
                " (each run also refreshes the insights and the report)...",
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
            report = report_path(stack, started)
            print()
            print(summarize(stack.data_dir / "usage.duckdb", ledger, keys[0], keys[-1]))
            print(f"Reference files (team mapping, budgets): {reference}")
            print(f"HTML report: {report}")


if __name__ == "__main__":
    main()
