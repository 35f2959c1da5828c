"""The daily insights at the issue's volume: 31 days of an org running 50,000 jobs a day.

Generated in DuckDB SQL (`volume.generate_job_runs`), then refreshed on a connection with the
warehouse's own settings (`WAREHOUSE_DUCKDB_CONFIG`: 256 MB). Before the refresh went in batches
of days, `workflow_runs.refresh` of this window failed with DuckDB's "Out of Memory Error".
Heavy: run once in CI, not in the dated reruns (nothing here depends on the date).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG
from usage_assets.insights import daily_usage, sanity, workflow_runs
from usage_assets.insights.workflow_runs import WORKFLOW_RUNS, plan_batches
from usage_assets_tests.insights.volume import generate_job_runs

FIRST = date(2026, 3, 1)
DAYS = 31
LAST = FIRST + timedelta(days=DAYS - 1)


@pytest.mark.heavy
def test_a_31_day_window_at_50k_job_runs_a_day_refreshes_within_the_memory_limit(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "usage.duckdb")
    # Generating is not what is measured: a bigger cap and no insertion order make it faster.
    with duckdb.connect(
        path, config={"memory_limit": "1GB", "preserve_insertion_order": False}
    ) as gen:
        generate_job_runs(gen, FIRST, DAYS)
        # A load keeps its window's rows only: late workflows' next-day rows come with the next.
        gen.execute(f"DELETE FROM {JOB_RUNS} WHERE usage_date > ?", [LAST])
    with duckdb.connect(path, config=dict(WAREHOUSE_DUCKDB_CONFIG)) as conn:
        assert conn.execute("SELECT current_setting('memory_limit')").fetchone() == ("244.1 MiB",)
        written = workflow_runs.refresh(conn, FIRST, LAST, "volume")
        expected = conn.execute(
            f"""SELECT count(*), sum(jobs), sum(credits), count(*) FILTER (WHERE running)
            FROM (
                SELECT count(*) AS jobs, sum(total_credits) AS credits,
                    bool_or(workflow_stopped_at IS NULL) AS running
                FROM {JOB_RUNS} GROUP BY workflow_id
            )"""
        ).fetchone()
        got = conn.execute(
            f"SELECT count(*), sum(jobs), sum(total_credits), count(*) FILTER"
            f" (WHERE status = 'running') FROM {WORKFLOW_RUNS}"
        ).fetchone()
        assert expected is not None and got is not None
        assert written == got[0] == expected[0] > 350_000
        assert got[1] == expected[1] > 1_500_000
        assert got[2] == pytest.approx(expected[2], rel=1e-9)
        assert got[3] == expected[3]
        assert sanity.workflow_runs_sane(conn).passed
        # The rest of insights_daily on the same connection: daily_usage and its check.
        refreshed = daily_usage.refresh(conn, FIRST, LAST, "volume")
        assert refreshed.job_runs == expected[1]
        assert sanity.daily_usage_sane(conn).passed


def test_batches_merge_small_days_and_split_a_big_one() -> None:
    d = [FIRST + timedelta(days=i) for i in range(4)]
    batches = plan_batches(
        [(d[0], 30, d[1]), (d[1], 30, d[2]), (d[2], 250, d[3]), (d[3], 5, d[3])], 100
    )
    assert [(b.first, b.last, b.rows_until, b.buckets, b.bucket) for b in batches] == [
        (d[0], d[1], d[2], 1, 0),
        *[(d[2], d[2], d[3], 3, b) for b in range(3)],
        (d[3], d[3], d[3], 1, 0),
    ]
