"""End to end in the production shape: a code server, the webserver and the daemon as three
processes on the PostgreSQL instance (deploy/dagster-postgres.yaml, the webserver and daemon on
deploy/workspace-grpc.yaml), the quota ledger in PostgreSQL, the warehouse a DuckLake with two
writers. A backfill launched like the UI does, the daemon's sensor launching the loads, the code
server running them: the lake must hold exactly the simulator's rows (as the DuckDB file does in
test_end_to_end.py), and the two windows' load steps must have run at the same time.

One test, about 2-3 minutes on two cores: it runs in each of CI's four suites.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import combinations

import dagster as dg
import psycopg2
import pytest
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

from usage_assets.defs.constants import WAREHOUSE_POOL
from usage_assets.defs.partitions import partition_keys_between
from usage_assets.defs.usage.jobs import download_and_load_usage
from usage_assets.dev.production_stack import ProductionStack, production_stack
from usage_assets.ingest.lake import LakeLocation, connect_lake
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DownloadGate, SimulatorSettings
from usage_assets_tests import postgres
from usage_assets_tests.defs.usage.pipeline_fixtures import expected_job_ids

LOAD_STEP = "job_runs"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Enough rows that each load step takes a few seconds: long enough to overlap, short enough for CI.
ROWS_PER_DAY = 200

Interval = tuple[datetime, datetime]


def overlapping(intervals: Mapping[str, Interval]) -> list[tuple[str, str]]:
    """The pairs of keys whose [start, end] intervals share some time."""
    return [
        (a, b)
        for a, b in combinations(sorted(intervals), 2)
        if intervals[a][0] < intervals[b][1] and intervals[b][0] < intervals[a][1]
    ]


def test_overlapping_names_exactly_the_pairs_that_share_time() -> None:
    t = datetime(2027, 1, 1, tzinfo=UTC)
    s = timedelta(seconds=1)
    spans = {"a": (t, t + 10 * s), "b": (t + 5 * s, t + 20 * s), "c": (t + 20 * s, t + 30 * s)}
    assert overlapping(spans) == [("a", "b")]  # b ends as c starts: touching is not overlapping


def load_step_intervals(instance_db: str, run_ids: list[str]) -> dict[str, Interval]:
    """Each run's load step (`job_runs`), from its STEP_START to its STEP_SUCCESS event, as
    stored in the instance's PostgreSQL event log."""
    with psycopg2.connect(instance_db) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT run_id, dagster_event_type, timestamp FROM event_logs"
            " WHERE step_key = %s AND dagster_event_type IN ('STEP_START', 'STEP_SUCCESS')"
            " AND run_id = ANY(%s)",
            (LOAD_STEP, run_ids),
        )
        rows = cur.fetchall()
    events = {(run_id, kind): at for run_id, kind, at in rows}
    return {r: (events[(r, "STEP_START")], events[(r, "STEP_SUCCESS")]) for r in run_ids}


@pytest.fixture
def summary(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """A line for the CI log's summary (deploy/conftest.py prints them even when tests pass)."""
    return lambda line: record_property("summary", line)


@pytest.fixture
def ledger_db(postgres_server: str) -> Iterator[str]:
    """The quota ledger's own database (the instance has another)."""
    with postgres.fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def lake_catalog_db(postgres_server: str) -> Iterator[str]:
    """The DuckLake catalog's own database."""
    with postgres.fresh_database(postgres_server) as url:
        yield url


# Exports stay `processing` this long unless the test releases them (long enough never to end
# by itself within the test).
HELD = timedelta(hours=1)
WRITERS = 2


@pytest.mark.heavy
def test_a_backfill_through_code_server_webserver_and_daemon_on_postgres_loads_a_ducklake_concurrently(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    ledger_db: str,
    lake_catalog_db: str,
    summary: Callable[[str], None],
) -> None:
    today = datetime.now(UTC).date()
    keys = partition_keys_between(today - timedelta(days=62), today - timedelta(days=1))
    gate = DownloadGate()
    settings = SimulatorSettings(
        processing_time=HELD, rows_per_day=ROWS_PER_DAY, download_gate=gate
    )
    work_dir = tmp_path_factory.mktemp("prod")
    lake = LakeLocation(catalog_url=lake_catalog_db, data_path=f"{work_dir / 'lake'}/")
    lake_env = {
        "USAGE_LAKE_CATALOG_URL": lake.catalog_url,
        "USAGE_LAKE_DATA_PATH": lake.data_path,
        "USAGE_WAREHOUSE_WRITERS": str(WRITERS),
    }
    with (
        SimulatorServer(settings) as sim,
        production_stack(
            work_dir, simulator=sim, instance_env=postgres.instance_env(postgres_url),
            ledger_url=ledger_db, extra_env=lake_env,
        ) as stack,
    ):  # fmt: skip
        started = datetime.now(UTC)
        backfill = stack.launch_backfill("usage_export_job", keys)
        # 62 days = two POSTs of 31 (one at a time: the POST pool). CircleCI then completes both
        # at once, as it may between two sensor polls: the sensor requests both loads in one tick.
        stack.wait_until("two POSTs", lambda: posts_received(sim) == 2, timeout=120)
        settings.processing_time = timedelta(0)
        # The sensor creates runs one after the other, the run queue launches them one at a
        # time, and each worker takes seconds to start: on a busy box the second load could
        # start after the first ended. The downloads wait until both loads are downloading,
        # so their load steps meet (if the pool lets them).
        stack.wait_until("both loads downloading", lambda: len(gate.waiting()) == 2, timeout=120)
        gate.open()
        loads = stack.wait_for_runs(download_and_load_usage.name, count=2, timeout=120)
        stack.wait_for_backfill(backfill, timeout=60)
        elapsed = (datetime.now(UTC) - started).total_seconds()

        expected = expected_job_ids(sim, keys[0], keys[-1], datetime.now(UTC))
        assert lake_job_ids(lake) == expected
        assert not (stack.data_dir / "usage.duckdb").exists()  # the warehouse is the lake
        assert posts_received(sim) == 2
        assert_ledger_recorded_the_posts(stack, ledger_db, posts=2)
        assert_runs_and_events_are_in_postgres(stack, postgres_url, backfill, keys)
        assert_the_code_server_ran_the_loads(stack, loads)
        with stack.instance() as instance:  # the sensor applied USAGE_WAREHOUSE_WRITERS
            pool = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
            assert pool.slot_count == WRITERS

        spans = load_step_intervals(postgres_url, [run.run_id for run in loads])
        windows = {r.run_id: (r.tags[RANGE_START], r.tags[RANGE_END]) for r in loads}
        assert sorted(windows.values()) == [(keys[0], keys[30]), (keys[31], keys[-1])]
        # Two writers: the two windows' load steps ran at the same time.
        assert len(overlapping(spans)) == 1, f"load steps did not overlap: {spans}"
    (first, first_end), (second, second_end) = sorted(spans.values())
    shared = (min(first_end, second_end) - second).total_seconds()
    summary(
        f"production stack: exact rows: {len(expected)} job runs over {len(keys)} days in the "
        f"DuckLake equal the simulator's; 2 POSTs, both in the PostgreSQL ledger; {elapsed:.0f} s "
        "from backfill to loaded"
    )
    summary(
        f"production stack: overlapping loads: {WRITERS} windows' {LOAD_STEP} steps ran "
        f"together for {shared:.1f} s (steps of {(first_end - first).total_seconds():.1f} s and "
        f"{(second_end - second).total_seconds():.1f} s, usage_warehouse_writer: {WRITERS})"
    )


def posts_received(sim: SimulatorServer) -> int:
    return sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC))


def lake_job_ids(lake: LakeLocation) -> list[str]:
    with connect_lake(lake, read_only=True) as conn:
        rows = conn.execute("SELECT job_id FROM circleci.job_runs ORDER BY job_id").fetchall()
    return [job_id for (job_id,) in rows]


def assert_ledger_recorded_the_posts(stack: ProductionStack, ledger_db: str, posts: int) -> None:
    """Every POST the simulator received is in the PostgreSQL ledger, and nothing went to SQLite."""
    ledger = PostQuotaLedger(
        ledger_db,
        api_url=stack.simulator.base_url,
        org_id=DEFAULT_ORG_ID,
        limit=10,
        window=timedelta(hours=24),
    )
    assert [attempt["outcome"] for attempt in ledger.attempts()] == ["created"] * posts
    assert not (stack.data_dir / "post_quota.sqlite").exists()


def assert_runs_and_events_are_in_postgres(
    stack: ProductionStack, instance_db: str, backfill: str, keys: list[str]
) -> None:
    with psycopg2.connect(instance_db) as conn, conn.cursor() as cur:
        # The backfill's two export runs, then the sensor's two loads (the freshness sensor's
        # check runs are not counted here).
        cur.execute(
            "SELECT status FROM runs JOIN run_tags USING (run_id)"
            " WHERE run_tags.key = 'dagster/backfill' AND run_tags.value = %s",
            (backfill,),
        )
        assert cur.fetchall() == [("SUCCESS",), ("SUCCESS",)]
        cur.execute(
            "SELECT status FROM runs WHERE pipeline_name = %s", (download_and_load_usage.name,)
        )
        assert cur.fetchall() == [("SUCCESS",), ("SUCCESS",)]
        cur.execute(
            "SELECT DISTINCT partition FROM event_logs"
            " WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
            (dg.AssetKey(LOAD_STEP).to_string(),),
        )
        assert sorted(partition for (partition,) in cur.fetchall()) == keys
    with stack.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    # Nothing fell back to SQLite storage under DAGSTER_HOME.
    assert sorted(stack.dagster_home.rglob("*.db")) == []


def assert_the_code_server_ran_the_loads(
    stack: ProductionStack, loads: list[dg.DagsterRun]
) -> None:
    """The runs came from the gRPC code location, i.e. the code server launched their workers."""
    for run in loads:
        assert run.remote_job_origin is not None
        origin = run.remote_job_origin.repository_origin.code_location_origin
        assert isinstance(origin, GrpcServerCodeLocationOrigin)
        assert origin.port == stack.code_server_port
