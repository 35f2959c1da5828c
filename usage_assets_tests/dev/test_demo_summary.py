"""`make demo`'s summary names each class whose fitted rate the reference file contradicts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from usage_assets.dev.demo import summarize
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.insights import cost, daily_usage, forecast, resource_class_rates, right_sizing
from usage_assets.insights.reference_data import ResourceClass
from usage_assets_tests.insights.job_rows import DAY, connect, insert, job


def test_the_summary_lists_the_rates_that_differ_from_the_file(tmp_path: Path) -> None:
    conn = connect(tmp_path)
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
