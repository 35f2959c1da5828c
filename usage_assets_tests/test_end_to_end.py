"""End to end as a user works: the real webserver and daemon, a backfill launched like the UI does,
the real sensor picking up the export jobs, and the warehouse checked against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from usage_assets.defs.partitions import partition_keys_between
from usage_assets.defs.usage.jobs import download_and_load_usage
from usage_assets.dev.local_stack import local_stack
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings
from usage_assets_tests.defs.usage.pipeline_fixtures import expected_job_ids


def insight_totals(path: Path) -> tuple[int, int]:
    """Job rows counted by circleci_insights.daily_usage, and workflow runs."""
    with duckdb.connect(str(path), read_only=True) as conn:
        row = conn.execute(
            "SELECT (SELECT sum(job_runs) FROM circleci_insights.daily_usage),"
            " (SELECT count(*) FROM circleci_insights.workflow_runs)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def table_job_ids(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return sorted(
            job_id for (job_id,) in conn.execute("SELECT job_id FROM circleci.job_runs").fetchall()
        )


def test_forty_day_backfill_through_webserver_daemon_and_sensor(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    keys = partition_keys_between(today - timedelta(days=40), today - timedelta(days=1))
    assert len(keys) == 40
    settings = SimulatorSettings(
        processing_time=timedelta(seconds=2), rows_per_day=15, rows_per_part=150
    )
    with SimulatorServer(settings) as sim, local_stack(tmp_path, simulator=sim) as stack:
        backfill = stack.launch_backfill("usage_export_job", keys)
        stack.wait_for_backfill(backfill, timeout=300)
        # 40 days = two POSTs (31 + 9); the sensor launches one download run per export job.
        first_runs = stack.wait_for_runs(download_and_load_usage.name, count=2, timeout=300)
        assert len(first_runs) == 2
        assert sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC)) == 2

        warehouse = stack.data_dir / "usage.duckdb"
        expected = expected_job_ids(sim, keys[0], keys[-1], datetime.now(UTC))
        assert table_job_ids(warehouse) == expected
        # The same runs refreshed the insights and wrote the report.
        job_rows, workflows = insight_totals(warehouse)
        assert job_rows == len(expected) and workflows > 0
        assert (stack.data_dir / "reports" / "usage_report.html").is_file()

        again = stack.launch_backfill("usage_export_job", keys)
        stack.wait_for_backfill(again, timeout=300)
        stack.wait_for_runs(download_and_load_usage.name, count=4, timeout=300)
        assert table_job_ids(warehouse) == expected
        assert insight_totals(warehouse) == (job_rows, workflows)  # replaced, not duplicated

        ledger = PostQuotaLedger(
            stack.data_dir / "post_quota.sqlite",
            api_url=sim.base_url,
            org_id=DEFAULT_ORG_ID,
            limit=10,
            window=timedelta(hours=24),
        )
        assert [a["outcome"] for a in ledger.attempts()] == ["created"] * 4
        assert ledger.status().left == 6
