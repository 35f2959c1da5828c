"""`job_runs`: the cleaned `circleci.job_runs` table in DuckDB, one row per job run."""

from collections.abc import Callable
from datetime import date

import dagster as dg
from dagster_duckdb import DuckDBResource

from usage_assets.defs.constants import EXPORT_ID_TAG, OWNERS, USAGE_GROUP, WAREHOUSE_POOL
from usage_assets.defs.partitions import daily_partitions, partition_day
from usage_assets.defs.resources import (
    CircleCIUsageResource,
    RawStoreResource,
    is_disk_full,
    is_lake,
    warehouse_connection,
    warehouse_disk,
    warehouse_window_lock,
)
from usage_assets.defs.usage.export_lookup import assign_exports
from usage_assets.defs.usage.raw_files import raw_usage_files
from usage_assets.ingest.cleaning import CLEAN_SCHEMA, DamagedPartError, ExportFormatError
from usage_assets.ingest.job_runs_table import JOB_RUNS, job_runs_columns
from usage_assets.ingest.raw_store import (
    DamagedManifestError,
    export_lock,
    forget_download,
    job_dir,
    part_paths,
    read_manifest,
)
from usage_assets.ingest.warehouse import (
    EmptyExportError,
    LoadInvariantError,
    LoadReport,
    load_window,
)


def _conflict_logger(
    context: dg.AssetExecutionContext, export_job_id: str
) -> Callable[[int, float, BaseException], None]:
    """Tells the run's log about a load run again after losing a DuckLake commit conflict."""

    def log(attempt: int, delay: float, exc: BaseException) -> None:
        context.log.warning(
            f"The load of export {export_job_id} lost a DuckLake commit conflict to a concurrent "
            f"load (attempt {attempt}); running it again in {delay:.1f} s: {exc}"
        )

    return log


class JobRunsConfig(dg.Config):
    """Launchpad settings of a `job_runs` load."""

    clear_window_if_export_is_empty: bool = False
    """CircleCI sometimes answers `completed` before an export's files are listed, so an export
    without rows never clears days that hold rows unless this is set. Set it only when those
    days really have no usage now."""


# Metadata key: days outside the run's partitions whose rows the load removed (older copies of job
# runs a newer export dated inside them); insights_daily of the same run refreshes them too.
DAYS_CHANGED_OUTSIDE_WINDOW = "days_changed_outside_window"


def _days_changed_outside(reports: list[LoadReport], partition_keys: list[str]) -> list[date]:
    """The days the run's windows changed that lie outside all of its partitions."""
    inside = {partition_day(key) for key in partition_keys}
    return sorted({d for r in reports for d in r.days_changed_outside_window} - inside)


JOB_RUNS_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(name, sql_type) for name, sql_type in job_runs_columns().items()]
)


@dg.asset(
    deps=[raw_usage_files],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    group_name=USAGE_GROUP,
    kinds={"duckdb", "polars"},
    owners=OWNERS,
    metadata={
        "dagster/table_name": JOB_RUNS,
        "dagster/column_schema": JOB_RUNS_SCHEMA,
        "partition_expr": "usage_date",
    },
)
def job_runs(
    context: dg.AssetExecutionContext,
    config: JobRunsConfig,
    circleci: CircleCIUsageResource,
    raw_store: RawStoreResource,
    warehouse: DuckDBResource,
) -> dg.MaterializeResult:
    """Every CircleCI job run of these days, typed and de-duplicated (one row per `job_id`).

    Loaded window by window in one transaction (delete the window, insert the export's rows), so a
    re-run never duplicates and a failure leaves the earlier rows in place. `export_job_id` and
    `load_run_id` on each row say which export and which Dagster run it came from.
    """
    assignments = assign_exports(
        context.instance, context.partition_keys, context.run.tags.get(EXPORT_ID_TAG)
    )
    reports: list[LoadReport] = []
    for assignment in assignments:
        folder = job_dir(raw_store.root, circleci.org_id, assignment.job_id)
        try:
            export = read_manifest(folder)
        except DamagedManifestError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        if export is None:
            raise dg.Failure(
                description=(
                    f"Raw files of export {assignment.job_id} are not on disk ({folder}). "
                    "Materialize raw_usage_files for these partitions first."
                ),
                allow_retries=False,
            )
        parts = [(assignment.job_id, path) for path in part_paths(folder, export)]
        try:
            # Shared: a download of the same export (another run) cannot clear the files mid-load.
            with export_lock(folder, shared=True), warehouse_connection(warehouse) as conn:
                report = load_window(
                    conn,
                    parts,
                    window_start=partition_day(min(assignment.partition_keys)),
                    window_end=partition_day(max(assignment.partition_keys)),
                    run_id=context.run.run_id,
                    export_job_id=assignment.job_id,
                    export_created_at=assignment.created_at,
                    allow_empty=config.clear_window_if_export_is_empty,
                    staging_dir=raw_store.staging_root,
                    window_lock=warehouse_window_lock(warehouse),
                    on_conflict=_conflict_logger(context, assignment.job_id),
                )
        except EmptyExportError as exc:
            # Most likely links not listed yet: forget this empty download so the next
            # raw_usage_files run asks CircleCI again.
            forget_download(folder)
            raise dg.Failure(
                description=f"Export {assignment.job_id}: {exc} CircleCI can complete an export "
                "before its files are listed. Re-materialize raw_usage_files and job_runs for "
                "these days later (the export is read again); if the days really have no usage "
                "now, launch job_runs with config clear_window_if_export_is_empty: true.",
                allow_retries=False,
            ) from None
        except LoadInvariantError as exc:
            raise dg.Failure(
                description=f"Export {assignment.job_id}: {exc}", allow_retries=False
            ) from None
        except DamagedPartError as exc:
            # The copy on disk is bad, not CircleCI's file: forget the download so the next
            # raw_usage_files run fetches the export again (nothing was loaded from it).
            forget_download(folder)
            raise dg.Failure(
                description=f"Export {assignment.job_id}: {exc} Its raw files are marked for "
                "download again: re-materialize raw_usage_files and job_runs for these days "
                "(the sensor's download runs do both).",
                allow_retries=False,
            ) from None
        except ExportFormatError as exc:
            raise dg.Failure(
                description=f"Export {assignment.job_id}: {exc}", allow_retries=False
            ) from None
        except Exception as exc:
            written = [raw_store.staging_root, warehouse_disk(warehouse)]
            if not is_disk_full(exc, written):
                raise
            raise dg.Failure(
                description=f"Export {assignment.job_id}: the disk filled up during the load "
                f"({type(exc).__name__}: {exc}). The load was rolled back and the earlier rows "
                f"are intact. Free space under {raw_store.staging_root.parent} (staging and the "
                "warehouse) and re-materialize job_runs for these days.",
                allow_retries=False,
            ) from None
        reports.append(report)
        if report.duplicate_rows_repaired:
            context.log.warning(
                f"{report.duplicate_rows_repaired} duplicate job run row(s) were found in "
                f"{report.window_start} .. {report.window_end} and removed (one row per job_id "
                "kept). An earlier load was probably killed inside DuckDB's COMMIT (see "
                "bench/DUCKDB_KILL_REPRO.md)."
            )
        if report.days_kept_from_newer_exports:
            days = report.days_kept_from_newer_exports
            context.log.info(
                f"{len(days)} day(s) ({days[0]} .. {days[-1]}) were already loaded from a newer "
                f"export and kept; {report.rows_superseded} row(s) of export "
                f"{assignment.job_id} were skipped"
            )
        if report.unknown_columns:
            context.log.warning(
                f"Export {assignment.job_id} has columns this pipeline does not know: "
                f"{', '.join(report.unknown_columns)}. They were skipped; the load went ahead."
            )
        if report.rows_outside_window:
            context.log.info(
                f"{report.rows_outside_window} row(s) fell outside {report.window_start} .. {report.window_end} and were not written"
            )

    with warehouse_connection(warehouse) as conn:
        row = conn.execute(f"SELECT count(*) FROM {JOB_RUNS}").fetchone()
    table_rows = int(row[0]) if row else 0
    loaded = sum(r.rows_loaded for r in reports)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table_rows,
            "rows_loaded": loaded,
            "rows_read": sum(r.rows_read for r in reports),
            "rows_outside_window": sum(r.rows_outside_window for r in reports),
            "duplicate_rows_dropped": sum(r.duplicate_rows_dropped for r in reports),
            "rows_replaced": sum(r.rows_replaced for r in reports),
            "rows_superseded": sum(r.rows_superseded for r in reports),
            "days_kept_from_newer_exports": sum(
                len(r.days_kept_from_newer_exports) for r in reports
            ),
            "duplicate_rows_repaired": sum(r.duplicate_rows_repaired for r in reports),
            # Read by insights_daily of the same run, which refreshes these days too.
            DAYS_CHANGED_OUTSIDE_WINDOW: ", ".join(
                str(day) for day in _days_changed_outside(reports, context.partition_keys)
            )
            or "none",
            "export_job_ids": ", ".join(a.job_id for a in assignments),
            "window_start": min(context.partition_keys),
            "window_end": max(context.partition_keys),
            "unknown_columns": ", ".join(sorted({c for r in reports for c in r.unknown_columns}))
            or "none",
            "missing_optional_columns": ", ".join(
                sorted({c for r in reports for c in r.missing_optional_columns})
            )
            or "none",
            "dagster/column_schema": JOB_RUNS_SCHEMA,
            "columns": len(CLEAN_SCHEMA),
            # Only on a DuckLake, where concurrent loads can lose a commit and run again.
            **(
                {"commit_conflicts_retried": sum(r.commit_conflicts_retried for r in reports)}
                if is_lake(warehouse)
                else {}
            ),
        }
    )
