"""Twenty runs of `usage_export_job` racing for a quota of ten, each in its own process."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, SimulatorSettings

RUNS = 20
QUOTA = 10


def _run_export(
    base_url: str, ledger_dir: str, day: str, start: Event, results: Queue[str]
) -> None:
    import dagster as dg

    from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource
    from usage_assets.defs.usage.export_jobs import usage_export_job
    from usage_assets.simulator.settings import DEFAULT_TOKEN

    resources = {
        "circleci": CircleCIUsageResource(
            token=DEFAULT_TOKEN, org_id=DEFAULT_ORG_ID, api_url=base_url
        ),
        "post_quota": PostQuotaResource(ledger_path=f"{ledger_dir}/quota.sqlite", max_posts=QUOTA),
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


def test_twenty_racing_runs_never_send_more_posts_than_the_quota(tmp_path: Path) -> None:
    # A day each: identical requests would reuse one pending export instead of racing to POST.
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=3 + n)).isoformat() for n in range(RUNS)]
    with SimulatorServer(SimulatorSettings(post_quota=100, processing_time=timedelta(0))) as sim:
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        results: Queue[str] = ctx.Queue()
        workers = [
            ctx.Process(target=_run_export, args=(sim.base_url, str(tmp_path), day, start, results))
            for day in days
        ]
        for worker in workers:
            worker.start()
        start.set()
        outcomes = [results.get(timeout=300) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        posts_received = sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC))
    assert posts_received == QUOTA
    assert outcomes.count("created") == QUOTA
    assert outcomes.count("refused") == RUNS - QUOTA
