"""The three assets materialized for real, in-process, against the simulator over HTTP."""

from __future__ import annotations

import gzip
import http.server
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from usage_assets.defs.constants import range_tags
from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource
from usage_assets.defs.usage.checks import job_runs_checks
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.job_runs import job_runs
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.ingest.quota_ledger import PostQuotaLedger
from usage_assets.simulator.parts import SchemaDrift
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import DEFAULT_ORG_ID, DEFAULT_TOKEN
from usage_assets_tests.defs.usage.pipeline_fixtures import (
    FIRST,
    LAST,
    TODAY,
    download_and_load,
    expected_job_ids,
    export,
    failure_message,
    int_metadata,
    partition_of,
    pipeline_resources,
    warehouse_job_ids,
)


def test_a_range_run_spends_one_post_and_records_the_job_on_every_partition(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = export(live_sim, tmp_path, instance)
    assert result.success
    materializations = result.asset_materializations_for_node("usage_export_job")
    assert sorted(partition_of(m) for m in materializations) == [
        FIRST,
        (TODAY - timedelta(days=11)).isoformat(),
        LAST,
    ]
    assert len({m.metadata["export_job_id"].value for m in materializations}) == 1
    assert materializations[0].metadata["window_start"].value == f"{FIRST}T00:00:00Z"
    assert materializations[0].metadata["window_end"].value == f"{LAST}T23:59:59Z"
    assert live_sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC)) == 1
    ledger = PostQuotaLedger(
        tmp_path / "quota.sqlite",
        api_url=live_sim.base_url,
        org_id=DEFAULT_ORG_ID,
        limit=10,
        window=timedelta(hours=24),
    )
    assert [a["outcome"] for a in ledger.attempts()] == ["created"]
    assert materializations[0].metadata["quota_left"].value == 9
    for m in materializations:
        assert "X-Amz" not in str(m.metadata)


def test_download_and_load_holds_exactly_the_simulators_rows_and_reruns_do_not_duplicate(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    loaded = download_and_load(live_sim, tmp_path, instance)
    assert loaded.success
    expected = expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))
    assert warehouse_job_ids(tmp_path) == expected
    checks = loaded.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks)
    raw = loaded.asset_materializations_for_node("raw_usage_files")[0].metadata
    assert int_metadata(raw, "rows") == len(expected) and int_metadata(raw, "parts") >= 2
    # Parts were staged beside the raw files (not in the system temp dir), and cleaned up.
    staging = tmp_path / "staging"
    assert staging.is_dir() and not any(staging.iterdir())

    again = download_and_load(live_sim, tmp_path, instance)
    assert again.success
    assert warehouse_job_ids(tmp_path) == expected
    # A fresh export of the same days replaces rows by job_id, still without duplicates.
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    assert warehouse_job_ids(tmp_path) == expected


def test_quota_exhausted_fails_before_any_post(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance, max_posts=1).success
    second = export(live_sim, tmp_path, instance, max_posts=1)
    assert not second.success
    assert "quota exhausted" in failure_message(second) and "next slot at" in failure_message(
        second
    )
    assert live_sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC)) == 1


def test_partitions_beyond_the_lookback_fail_before_any_post(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    old = (TODAY - timedelta(days=380)).isoformat()
    result = export(live_sim, tmp_path, instance, first=old, last=old)
    assert not result.success
    assert "366 days" in failure_message(result)
    assert live_sim.simulator.store.post_limiter.used(DEFAULT_ORG_ID, datetime.now(UTC)) == 0


def test_failed_export_gives_a_clear_error(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    live_sim.settings.faults.job_failure_rate = 1.0
    assert export(live_sim, tmp_path, instance).success
    result = download_and_load(live_sim, tmp_path, instance)
    assert not result.success
    assert "failed" in failure_message(result) and "re-creates" in failure_message(result)


def test_empty_export_is_an_empty_result(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    live_sim.settings.faults.empty_export_rate = 1.0
    assert export(live_sim, tmp_path, instance).success
    result = download_and_load(live_sim, tmp_path, instance)
    assert result.success
    assert result.asset_materializations_for_node("raw_usage_files")[0].metadata["parts"].value == 0
    assert warehouse_job_ids(tmp_path) == []


def test_missing_required_column_fails_and_keeps_earlier_rows(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    before = warehouse_job_ids(tmp_path)
    live_sim.settings.faults.schema_drift = SchemaDrift(missing_columns=("TOTAL_CREDITS",))
    assert export(live_sim, tmp_path, instance).success
    result = download_and_load(live_sim, tmp_path, instance)
    assert not result.success
    assert "TOTAL_CREDITS" in failure_message(result)
    assert warehouse_job_ids(tmp_path) == before


def test_unknown_extra_column_is_reported_and_loaded_around(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    live_sim.settings.faults.schema_drift = SchemaDrift(extra_columns=("IS_DEFAULT_BRANCH",))
    assert export(live_sim, tmp_path, instance).success
    result = download_and_load(live_sim, tmp_path, instance)
    assert result.success
    metadata = result.asset_materializations_for_node("job_runs")[0].metadata
    assert metadata["unknown_columns"].value == "IS_DEFAULT_BRANCH"
    assert warehouse_job_ids(tmp_path) == expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))


def test_a_2026_dialect_export_loads_exactly_as_the_2024_one(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """2026 files quote every field and write "" for a null (circleci-data-facts.md §4): the
    loader reads the same rows, the same nulls and the same credits as from the 2024 dialect."""

    def load(dialect: str, folder: Path) -> list[tuple[object, ...]]:
        live_sim.settings.faults.file_dialect = dialect
        assert export(live_sim, folder, instance).success
        raw_dir = folder / "raw"
        assert download_and_load(live_sim, folder, instance).success
        part = next(raw_dir.rglob("*.csv.gz"))
        with gzip.open(part, "rt") as handle:
            first_line = handle.readline()
        assert first_line.startswith('"ORGANIZATION_ID","') == (dialect == "2026")
        with duckdb.connect(str(folder / "usage.duckdb")) as conn:
            return conn.execute(
                "SELECT job_id, job_name, job_build_status, resource_class, "
                "median_cpu_utilization_pct, max_ram_utilization_pct, job_run_seconds, "
                "vcs_branch, job_run_stopped_at, storage_credits, total_credits "
                "FROM circleci.job_runs ORDER BY job_id"
            ).fetchall()

    old = load("2024", tmp_path / "old")
    new = load("2026", tmp_path / "new")
    assert [r[0] for r in new] == expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))
    assert new == old
    assert any(r[5] is None for r in new) and any(r[1] is None for r in new)


def test_rows_outside_the_window_are_counted_not_written(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    # The export covers three days, the load only its middle one.
    assert export(live_sim, tmp_path, instance).success
    middle = (TODAY - timedelta(days=11)).isoformat()
    result = download_and_load(live_sim, tmp_path, instance, first=middle, last=middle)
    assert result.success
    metadata = result.asset_materializations_for_node("job_runs")[0].metadata
    assert int_metadata(metadata, "rows_outside_window") > 0
    day = date.fromisoformat(middle)
    assert warehouse_job_ids(tmp_path) == warehouse_job_ids(tmp_path, day, day)
    with duckdb.connect(str(tmp_path / "usage.duckdb")) as conn:
        assert conn.execute(
            "SELECT count(*) FROM circleci.job_runs WHERE usage_date <> ?", [day]
        ).fetchone() == (0,)


def test_no_secret_reaches_the_event_log(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    export(live_sim, tmp_path, instance)
    loaded = download_and_load(live_sim, tmp_path, instance)
    assert loaded.success
    everything = " ".join(
        str(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)
    )
    assert "simulated-circleci-token" not in everything
    assert "X-Amz-Signature" not in everything
    assert "export_job_id" in everything  # the log was really read


def test_a_damaged_manifest_fails_the_load_by_name_and_a_rematerialize_downloads_again(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    (manifest,) = (tmp_path / "raw").rglob("manifest.json")
    manifest.write_text("")  # e.g. a disk that filled up while it was rewritten
    load_only = dg.materialize(
        [usage_export_job, raw_usage_files, job_runs, job_runs_checks],
        selection=[job_runs, job_runs_checks],
        resources=pipeline_resources(live_sim, tmp_path),
        instance=instance,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )
    assert not load_only.success
    assert f"{manifest} is damaged" in failure_message(load_only)
    again = download_and_load(live_sim, tmp_path, instance)
    assert again.success
    assert warehouse_job_ids(tmp_path) == expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))
    assert manifest.read_text().startswith("{")


def test_a_part_damaged_on_disk_fails_the_load_and_the_next_run_downloads_it_again(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert export(live_sim, tmp_path, instance).success
    assert download_and_load(live_sim, tmp_path, instance).success
    expected = expected_job_ids(live_sim, FIRST, LAST, datetime.now(UTC))
    part = sorted((tmp_path / "raw").rglob("part_*.csv.gz"))[0]
    damaged = bytearray(part.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: the manifest alone cannot tell
    part.write_bytes(bytes(damaged))
    failed = download_and_load(live_sim, tmp_path, instance)
    assert not failed.success
    message = failure_message(failed)
    assert f"{part.name}: damaged" in message and "marked for download again" in message
    assert warehouse_job_ids(tmp_path) == expected  # nothing loaded was lost
    again = download_and_load(live_sim, tmp_path, instance)
    assert again.success
    assert warehouse_job_ids(tmp_path) == expected
    raw = again.asset_materializations_for_node("raw_usage_files")[0].metadata
    assert int_metadata(raw, "rows") == len(expected)


def test_a_post_that_never_left_the_machine_gives_its_quota_slot_back(
    live_sim: SimulatorServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resources = pipeline_resources(live_sim, tmp_path, max_posts=1)
    resources["circleci"] = CircleCIUsageResource(
        token=DEFAULT_TOKEN + "\r", org_id=DEFAULT_ORG_ID, api_url=live_sim.base_url
    )
    result = dg.materialize(
        [usage_export_job],
        resources=resources,
        instance=instance,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )
    assert not result.success
    assert "was not sent" in failure_message(result)
    ledger = PostQuotaLedger(
        tmp_path / "quota.sqlite",
        api_url=live_sim.base_url,
        org_id=DEFAULT_ORG_ID,
        limit=1,
        window=timedelta(hours=24),
    )
    assert [a["outcome"] for a in ledger.attempts()] == ["not_sent"]
    assert ledger.status().left == 1
    assert export(live_sim, tmp_path, instance, max_posts=1).success  # the slot was free


class _AcceptsWithGarbage(http.server.BaseHTTPRequestHandler):
    """A gateway that forwards the POST (so a job is created) and mangles the 201's body."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"<html>upstream answered</html>"
        self.send_response(201)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_201_with_an_unreadable_body_is_recorded_as_accepted_not_refused(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AcceptsWithGarbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api_url = f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    try:
        result = dg.materialize(
            [usage_export_job],
            resources={
                "circleci": CircleCIUsageResource(
                    token=DEFAULT_TOKEN, org_id=DEFAULT_ORG_ID, api_url=api_url
                ),
                "post_quota": PostQuotaResource(
                    ledger_path=str(tmp_path / "quota.sqlite"), max_posts=2
                ),
            },
            instance=instance,
            tags=range_tags(FIRST, LAST),
            raise_on_error=False,
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert not result.success
    assert "an export job was probably created" in failure_message(result)
    ledger = PostQuotaLedger(
        tmp_path / "quota.sqlite",
        api_url=api_url,
        org_id=DEFAULT_ORG_ID,
        limit=2,
        window=timedelta(hours=24),
    )
    assert [a["outcome"] for a in ledger.attempts()] == ["unreadable_answer"]
    assert ledger.status().left == 1  # the slot stays spent
