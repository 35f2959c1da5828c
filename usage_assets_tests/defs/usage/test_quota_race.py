"""Runs of `usage_export_job` racing for a quota, each in its own process, on either ledger store.

SQLite: twenty runs for a quota of ten. PostgreSQL: six for three, enough to race (each process
reserves under the advisory lock) while keeping the suite short: every run is a Python process
importing Dagster, ~2 s of CPU each; the ledger's own 20-process race covers both stores in full
(usage_assets_tests/ingest/test_quota_ledger.py)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings


def _run_export(
    base_url: str,
    ledger_dir: str,
    ledger_url: str,
    quota: int,
    day: str,
    start: Event,
    results: Queue[str],
) -> None:
    import dagster as dg

    from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource
    from usage_assets.defs.usage.export_jobs import usage_export_job
    from usage_assets.simulator.settings import DEFAULT_TOKEN

    resources = {
        "circleci": CircleCIUsageResource(
            token=DEFAULT_TOKEN, org_id=DEFAULT_ORG_ID, api_url=base_url
        ),
        "post_quota": PostQuotaResource(
            ledger_path=f"{ledger_dir}/quota.sqlite", ledger_url=ledger_url, max_posts=quota
        ),
    }
    start.wait()
    result = dg.materialize(
        [usage_export_job],
        resources=resources,
        partition_key=day,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    results.put("created" if result.success else "refused")


@pytest.mark.parametrize(("store", "runs", "quota"), [("sqlite", 20, 10), ("postgres", 6, 3)])
def test_racing_runs_never_send_more_posts_than_the_quota(
    tmp_path: Path, request: pytest.FixtureRequest, store: str, runs: int, quota: int
) -> None:
    ledger_url = str(request.getfixturevalue("postgres_url")) if store == "postgres" else ""
    # A day each: identical requests would reuse one pending export instead of racing to POST.
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=3 + n)).isoformat() for n in range(runs)]
    with SimulatorServer(SimulatorSettings(post_quota=100, processing_time=timedelta(0))) as sim:
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        results: Queue[str] = ctx.Queue()
        workers = [
            ctx.Process(
                target=_run_export,
                args=(sim.base_url, str(tmp_path), ledger_url, quota, day, start, results),
            )
            for day in days
        ]
        for worker in workers:
            worker.start()
        start.set()
        outcomes = [results.get(timeout=300) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        posts_received = sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC))
    assert posts_received == quota
    assert outcomes.count("created") == quota
    assert outcomes.count("refused") == runs - quota
