"""The first loads of a new deployment attach an empty DuckLake catalog at the same moment.

Found by the production-stack test (deploy/test_production_stack.py): its two first loads, in two
run workers, attached a fresh lake in the same second and one failed creating DuckLake's tables.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from usage_assets.ingest.lake import LakeLocation, connect_lake
from usage_assets_tests.lake import lake_at

WORKERS = 3


def _attach(lake: LakeLocation, barrier: Barrier, out: Any) -> None:
    try:
        barrier.wait(timeout=60)
        conn = connect_lake(lake)
        conn.close()
        out.put("attached")
    except BaseException as exc:  # reported to the test, which fails with it
        out.put(repr(exc))


def test_writers_attaching_an_empty_catalog_at_once_all_succeed(
    postgres_url: str, tmp_path: Path
) -> None:
    lake = lake_at(postgres_url, tmp_path)
    barrier = multiprocessing.Barrier(WORKERS)
    out: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_attach, args=(lake, barrier, out)) for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert results == ["attached"] * WORKERS
    with connect_lake(lake, read_only=True) as conn:  # one catalog, usable
        assert conn.execute("SELECT 1").fetchone() == (1,)
