"""On PostgreSQL an earlier storage id can commit after a later one: the sensor still sees both.

Two export materializations are written to a real PostgreSQL event log (deploy/dagster-postgres.yaml)
by two connections. dagster-postgres inserts an event in one autocommit statement: the id comes
from the sequence when the INSERT starts, the row is visible when it ends, and a slow statement
(a busy server, a stalled worker) lets a later INSERT commit in between. The test widens that
moment: the first INSERT runs inside a transaction held open while the second takes the next id
and commits. A tick in between sees only the second; once the first commits, the next tick must
track it too. A cursor that jumped to the last id read loses it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from usage_assets.defs.constants import EXPORT_ASSET_KEY, EXPORT_ID_METADATA
from usage_assets.defs.usage.sensors import _new_export_jobs
from usage_assets.ingest.pending_exports import SensorCursor


def _export_materialization(export_id: str, day: str) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=EXPORT_ASSET_KEY, partition=day, metadata={EXPORT_ID_METADATA: export_id}
    )


def _storage_ids(instance: dg.DagsterInstance) -> dict[str, int]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EXPORT_ASSET_KEY), limit=10, ascending=True
    ).records
    return {
        str(r.asset_materialization.metadata[EXPORT_ID_METADATA].value): r.storage_id
        for r in records
        if r.asset_materialization is not None
    }


def test_an_export_whose_storage_id_commits_late_is_not_lost(
    postgres_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres_instance as instance:
        storage: Any = instance.event_log_storage
        real_connect = storage._connect
        inserted, release = threading.Event(), threading.Event()

        @contextmanager
        def held_open() -> Iterator[Any]:
            # store_event inserts the event (taking its id) in this block; commit it only when
            # the test says so.
            with real_connect() as autocommit:
                conn = autocommit.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    yield conn
                    inserted.set()
                    release.wait(timeout=120)

        def connect() -> AbstractContextManager[Any]:
            return held_open() if threading.current_thread() is slow_writer else real_connect()

        monkeypatch.setattr(storage, "_connect", connect)
        slow_writer = threading.Thread(
            target=instance.report_runless_asset_event,
            args=(_export_materialization("export-early-id", "2026-11-10"),),
        )
        slow_writer.start()
        try:
            assert inserted.wait(timeout=120)
            instance.report_runless_asset_event(
                _export_materialization("export-late-id", "2026-11-11")
            )
            assert list(_storage_ids(instance)) == ["export-late-id"]

            now = datetime.now(UTC)
            cursor = SensorCursor()
            _new_export_jobs(dg.build_sensor_context(instance=instance), cursor, now)
            assert set(cursor.pending) == {"export-late-id"}
        finally:
            release.set()
            slow_writer.join(timeout=120)

        ids = _storage_ids(instance)
        assert ids["export-early-id"] < ids["export-late-id"]  # it did commit out of order

        # The next tick, seconds later: the late commit is tracked (another day: neither export
        # supersedes the other), the one already tracked is not tracked twice.
        again = SensorCursor.parse(cursor.serialize())
        _new_export_jobs(
            dg.build_sensor_context(instance=instance), again, now + timedelta(seconds=30)
        )
        assert set(again.pending) == {"export-early-id", "export-late-id"}
        assert again.pending["export-late-id"] == cursor.pending["export-late-id"]
