"""The demo's summary, read from a small hand-made warehouse."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from usage_assets.dev.demo import summarize
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.insights import cost, daily_usage, forecast, resource_class_rates, right_sizing
from usage_assets.insights.reference_data import PricePeriod, ResourceClass
from usage_assets_tests.insights.job_rows import insert, job

DAY = date(2026, 10, 5)


def test_the_summary_lists_seat_fees_apart_from_the_projects(tmp_path: Path) -> None:
    warehouse = tmp_path / "usage.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        insert(
            conn,
            [
                job(compute_credits=120),
                # A seat fee on a web job row: web keeps its 120 job credits.
                job(compute_credits=0, user_credits=25_000),
                job(project_id="p-api", project_name="api", compute_credits=80),
            ],
        )
        daily_usage.refresh(conn, DAY, DAY, "run-1")
        right_sizing.refresh(conn, (DAY, DAY), "run-1", [], None)
        cost.refresh_costs(conn, "run-1", [PricePeriod(date(2020, 1, 1), None, "USD", 0.0006)], [])
        forecast.refresh(conn, "run-1", [])
    ledger = PostQuotaLedger(
        tmp_path / "post_quota.sqlite",
        api_url="http://127.0.0.1:1/api/v2",
        org_id="org-1",
        limit=10,
        window=timedelta(hours=1),
    )
    text = summarize(warehouse, ledger, str(DAY), str(DAY)).splitlines()
    # The day's usage is all credits: 120 + 25,000 + 80.
    assert f"  {DAY!s:<12}{3:>10}{25_200:>12,}" in text
    projects = [line.split()[0] for line in text if line.endswith(" USD") and "runs" in line]
    assert projects == ["web", "api"]
    assert any(" 2 runs          120 credits       0.07 USD" in line for line in text)
    # 25,000 x 0.0006 = 15.00 USD, on a line of its own.
    seat_line = next(line for line in text if line.strip().startswith("seat fees (acme)"))
    assert seat_line.split()[-4:] == ["25,000", "credits", "15.00", "USD"]


def test_the_summary_lists_the_rates_that_differ_from_the_file(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "usage.duckdb"))
    # machine xlarge billed 1,000 credits per 600 s (100 a minute); docker medium at its 10.
    insert(
        conn,
        [job(executor="machine", resource_class="xlarge", seconds=600, compute_credits=1000)] * 5
        + [job(seconds=60, compute_credits=10)] * 5,
    )
    classes = [
        ResourceClass("machine", "xlarge", 8, 32, 40, None),
        ResourceClass("docker", "medium", 2, 4, 10, None),
    ]
    resource_class_rates.refresh(conn, (DAY, DAY), "run-1", classes)
    daily_usage.ensure_table(conn)
    right_sizing.ensure_table(conn)
    cost.ensure_tables(conn)
    forecast.ensure_table(conn)
    conn.close()
    ledger = PostQuotaLedger(
        tmp_path / "ledger.sqlite", api_url="http://sim", org_id="org", limit=10,
        window=timedelta(hours=1),
    )  # fmt: skip
    text = summarize(tmp_path / "usage.duckdb", ledger, str(DAY), str(DAY))
    assert (
        "Credits per minute fitted for 2 resource class(es) (circleci_insights.resource_class_rates);"
        " differing from resource_classes.csv: machine xlarge: fitted 100, file 40 (5 of 5 runs)"
    ) in text
