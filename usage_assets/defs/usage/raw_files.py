"""`raw_usage_files`: every part of a completed export, downloaded, verified and kept on disk."""

import shutil
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import dagster as dg

from usage_assets.circleci import (
    DownloadedPart,
    DownloadLinkExpiredError,
    DownloadTooSlowError,
    ExportJob,
    ExportState,
    UsageApiClient,
    UsageApiError,
)
from usage_assets.defs.constants import EXPORT_ID_TAG, OWNERS, USAGE_GROUP
from usage_assets.defs.partitions import daily_partitions
from usage_assets.defs.resources import DISK_FULL_ERRNOS, CircleCIUsageResource, RawStoreResource
from usage_assets.defs.usage.export_jobs import usage_export_job
from usage_assets.defs.usage.export_lookup import assign_exports
from usage_assets.ingest.raw_store import (
    DamagedManifestError,
    PartRecord,
    RawExport,
    export_lock,
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
            with export_lock(
                folder,
                on_wait=partial(
                    context.log.info,
                    f"Another run is downloading export {assignment.job_id}; waiting for it",
                ),
            ):
                try:
                    exports.append(
                        _downloaded(context, client, circleci, assignment.job_id, folder)
                    )
                except OSError as exc:
                    if exc.errno not in DISK_FULL_ERRNOS:
                        raise
                    shutil.rmtree(folder, ignore_errors=True)  # a part-written download
                    raise dg.Failure(
                        description=f"Export {assignment.job_id} could not be written under "
                        f"{folder.parent}: {exc.strerror}. Free space there and re-materialize "
                        "raw_usage_files for these days; nothing was loaded and nothing loaded "
                        "before changed.",
                        allow_retries=False,
                    ) from None

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


def _downloaded(
    context: dg.AssetExecutionContext,
    client: UsageApiClient,
    circleci: CircleCIUsageResource,
    job_id: str,
    folder: Path,
) -> RawExport:
    """The export's files on disk: the complete download already there, or a new one."""
    try:
        export = read_manifest(folder)
    except DamagedManifestError as exc:
        context.log.warning(f"{exc} Downloading it again now.")
        export = None
    if export is not None:
        context.log.info(f"Export {job_id} is already on disk; not downloading again")
        return export
    return _download_export(context, client, circleci, job_id, folder)


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


def _links(
    context: dg.AssetExecutionContext, client: UsageApiClient, job_id: str, recheck_seconds: float
) -> list[str]:
    """The completed job's download links. A job completed without links is read again for up
    to `recheck_seconds`: CircleCI can list them late ("not immediately available"), and taking
    such an answer as "no usage" would treat a window full of job runs as empty."""
    urls = list(_completed_job(client, job_id).download_urls or ())
    deadline = time.monotonic() + recheck_seconds
    pause = min(max(recheck_seconds / 4, 1.0), 15.0)
    while not urls and time.monotonic() < deadline:
        context.log.info(f"Export {job_id} completed without download links; reading it again")
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        urls = list(_completed_job(client, job_id).download_urls or ())
    return urls


def _download_export(
    context: dg.AssetExecutionContext,
    client: UsageApiClient,
    circleci: CircleCIUsageResource,
    job_id: str,
    folder: Path,
) -> RawExport:
    urls = _links(context, client, job_id, circleci.links_recheck_seconds)
    if folder.exists():
        shutil.rmtree(folder)  # leftovers of an interrupted download
    folder.mkdir(parents=True)
    if not urls:
        context.log.info(
            f"Export {job_id} completed with no files, still none after "
            f"{circleci.links_recheck_seconds:.0f} s: taken as no usage in its window"
        )
    records: list[PartRecord] = []
    refreshed_for: set[int] = set()
    # The bound is re-read every turn: a fresh GET may list more parts than the first one did.
    while (index := len(records)) < len(urls):
        dest = folder / part_name(index)
        try:
            part = _fetch(client, urls[index], dest, job_id)
        except (DownloadLinkExpiredError, DownloadTooSlowError) as exc:
            if index in refreshed_for:
                raise dg.Failure(
                    description=f"Export {job_id}: {exc}, again from a fresh link. Re-materialize "
                    "raw_usage_files for these days later (the sensor retries failed downloads)."
                ) from None
            # The links of one GET share an expiry and a long download can outlive them; a
            # trickling link is worth leaving too. A fresh set from one more GET serves the rest.
            context.log.warning(f"Export {job_id}: {exc}; reading fresh download links")
            refreshed_for.add(index)
            urls = list(_completed_job(client, job_id).download_urls or ())
            if len(urls) < len(records):
                raise dg.Failure(
                    description=f"Export {job_id} now lists {len(urls)} part(s), fewer than the "
                    f"{len(records)} already downloaded; re-materialize raw_usage_files to fetch "
                    "it again from scratch"
                ) from None
            continue
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
        org_id=circleci.org_id,
        downloaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        parts=tuple(records),
    )
    write_manifest(folder, export)
    return export


def _fetch(client: UsageApiClient, url: str, dest: Path, job_id: str) -> DownloadedPart:
    """Download one part; a link to replace is left to the caller, anything else fails the run."""
    try:
        return client.download(url, dest)
    except (DownloadLinkExpiredError, DownloadTooSlowError):
        raise
    except UsageApiError as exc:
        raise dg.Failure(description=f"Export {job_id}: {exc}") from None
