"""`raw_usage_files`: every part of a completed export, downloaded, verified and kept on disk."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from usage_assets.circleci import (
    DownloadedPart,
    DownloadLinkExpiredError,
    ExportJob,
    ExportState,
    UsageApiClient,
    UsageApiError,
)
from usage_assets.defs.constants import EXPORT_ID_TAG, OWNERS, USAGE_GROUP
from usage_assets.defs.partitions import daily_partitions
from usage_assets.defs.resources import CircleCIUsageResource, RawStoreResource
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.export_lookup import assign_exports
from usage_assets.ingest.raw_store import (
    DamagedManifestError,
    PartRecord,
    RawExport,
    job_dir,
    part_name,
    read_manifest,
    write_manifest,
)


@dg.asset(
    deps=[usage_export_job],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=USAGE_GROUP,
    kinds={"circleci", "csv"},
    owners=OWNERS,
)
def raw_usage_files(
    context: dg.AssetExecutionContext, circleci: CircleCIUsageResource, raw_store: RawStoreResource
) -> dg.MaterializeResult:
    """The gzip CSV parts of the export job behind these days, exactly as CircleCI served them.

    Re-reads the job for fresh pre-signed links (they expire 36 h after the GET that minted them),
    downloads every part (an export is often split in several), verifies each as complete gzip and
    writes it atomically under `$USAGE_DATA_DIR/raw/<org>/<job>/`. A job already downloaded is not
    fetched again. A completed job without links is a window with no usage: an empty result.
    """
    assignments = assign_exports(
        context.instance, context.partition_keys, context.run.tags.get(EXPORT_ID_TAG)
    )
    exports: list[RawExport] = []
    with circleci.get_client() as client:
        for assignment in assignments:
            folder = job_dir(raw_store.root, circleci.org_id, assignment.job_id)
            try:
                export = read_manifest(folder)
            except DamagedManifestError as exc:
                context.log.warning(f"{exc} Downloading it again now.")
                export = None
            if export is None:
                export = _download_export(
                    context, client, assignment.job_id, circleci.org_id, folder
                )
            else:
                context.log.info(
                    f"Export {assignment.job_id} is already on disk; not downloading again"
                )
            exports.append(export)

    return dg.MaterializeResult(
        metadata={
            "export_job_ids": ", ".join(e.export_job_id for e in exports),
            "parts": sum(len(e.parts) for e in exports),
            "bytes": sum(e.total_bytes for e in exports),
            "rows": sum(e.total_rows for e in exports),
            "folders": ", ".join(
                str(job_dir(raw_store.root, e.org_id, e.export_job_id)) for e in exports
            ),
        }
    )


def _completed_job(client: UsageApiClient, job_id: str) -> ExportJob:
    try:
        job = client.get_export(job_id)
    except UsageApiError as exc:
        raise dg.Failure(description=f"Could not read export job {job_id}: {exc}") from None
    if job.state is ExportState.FAILED:
        raise dg.Failure(
            description=(
                f"CircleCI reports export job {job_id} failed ({job.error_reason or 'no reason given'}). "
                "The sensor re-creates failed exports when the POST quota allows."
            ),
            allow_retries=False,
        )
    if job.state is not ExportState.COMPLETED:
        raise dg.Failure(
            description=(
                f"Export job {job_id} is still {job.state.value}. The sensor launches this download "
                "by itself once CircleCI completes the job."
            ),
            allow_retries=False,
        )
    return job


def _download_export(
    context: dg.AssetExecutionContext,
    client: UsageApiClient,
    job_id: str,
    org_id: str,
    folder: Path,
) -> RawExport:
    urls = list(_completed_job(client, job_id).download_urls or ())
    if folder.exists():
        shutil.rmtree(folder)  # leftovers of an interrupted download
    folder.mkdir(parents=True)
    if not urls:
        context.log.info(f"Export {job_id} completed with no files: no usage in its window")
    records: list[PartRecord] = []
    for index in range(len(urls)):
        dest = folder / part_name(index)
        try:
            part = _fetch(client, urls[index], dest, job_id)
        except DownloadLinkExpiredError:
            # The links of one GET share an expiry and a long download can outlive them; a fresh
            # set from one more GET serves the remaining parts.
            context.log.warning(f"Download links of export {job_id} expired; reading fresh ones")
            urls = list(_completed_job(client, job_id).download_urls or ())
            if len(urls) <= index:
                raise dg.Failure(
                    description=f"Export {job_id} now lists fewer parts than before"
                ) from None
            part = _fetch(client, urls[index], dest, job_id)
        records.append(
            PartRecord(
                name=dest.name, compressed_bytes=part.compressed_bytes, data_rows=part.data_rows
            )
        )
        context.log.info(
            f"Export {job_id}: part {index + 1}/{len(urls)}: {part.compressed_bytes} bytes, {part.data_rows} rows"
        )
    export = RawExport(
        export_job_id=job_id,
        org_id=org_id,
        downloaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        parts=tuple(records),
    )
    write_manifest(folder, export)
    return export


def _fetch(client: UsageApiClient, url: str, dest: Path, job_id: str) -> DownloadedPart:
    """Download one part; an expired link is left to the caller, anything else fails the run."""
    try:
        return client.download(url, dest)
    except DownloadLinkExpiredError:
        raise
    except UsageApiError as exc:
        raise dg.Failure(description=f"Export {job_id}: {exc}") from None
