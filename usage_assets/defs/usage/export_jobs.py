"""`usage_export_job`: one create-export POST per run, for the run's whole partition range.

A UI backfill over N days is split into runs of at most 31 partitions (the backfill policy), so it
spends ceil(N / 31) POSTs, not N. The POST is guarded by the quota ledger and serialized across runs
by the `circleci_export_post` pool, so the check-then-POST cannot race.
"""

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from usage_assets.circleci import (
    CreateNotSentError,
    CreateOutcomeUnknownError,
    ExportState,
    InvalidExportRequestError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    UsageApiClient,
    UsageApiError,
)
from usage_assets.circleci.timestamps import utc_now
from usage_assets.defs.constants import (
    ATTEMPT_METADATA,
    ATTEMPT_TAG,
    EXPORT_CREATED_AT_METADATA,
    EXPORT_ID_METADATA,
    OWNERS,
    PARTITION_RANGE_METADATA,
    POST_POOL,
    RECREATES_METADATA,
    RECREATES_TAG,
    REUSED_METADATA,
    STATE_METADATA,
    USAGE_GROUP,
)
from usage_assets.defs.partitions import MAX_PARTITIONS_PER_EXPORT, daily_partitions, export_window
from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource, quota_metadata
from usage_assets.defs.usage.export_lookup import format_partition_range
from usage_assets.ingest.pending_exports import STUCK_AFTER
from usage_assets.ingest.quota_ledger import PostOutcome, PostQuotaLedger, QuotaExhaustedError


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_EXPORT),
    pool=POST_POOL,
    group_name=USAGE_GROUP,
    kinds={"circleci", "api"},
    owners=OWNERS,
)
def usage_export_job(
    context: dg.AssetExecutionContext,
    circleci: CircleCIUsageResource,
    post_quota: PostQuotaResource,
) -> dg.MaterializeResult:
    """A CircleCI usage export job covering this run's days.

    Spends one POST of the org's quota (about 10 a day). The sensor `usage_export_job_sensor` then
    polls the job and, once CircleCI completes it, launches the download and load of its days.
    """
    key_range = context.partition_key_range
    start, end = export_window(key_range.start, key_range.end)
    with circleci.get_client() as client:
        # Fail before spending a slot: partitions older than the API's look-back can never export.
        try:
            body = client.validate_export_request(start, end, circleci.shared_org_ids)
        except InvalidExportRequestError as exc:
            raise dg.Failure(
                description=(
                    f"{exc}. Partitions {key_range.start} .. {key_range.end} cannot be exported; "
                    "CircleCI keeps about 13 months (366 days) of usage."
                ),
                allow_retries=False,
            ) from None

        ledger = post_quota.ledger(circleci.api_url, circleci.org_id)
        pending = _pending_export_for_same_request(context, client, ledger, start, end, circleci)
        if pending is not None:
            context.log.info(
                f"Export job {pending.export_job_id} for exactly {body['start']} .. {body['end']} "
                "is still pending at CircleCI: reusing it, no POST spent"
            )
            return _materialize(
                context,
                circleci,
                ledger,
                body,
                export_job_id=pending.export_job_id,
                state=pending.state,
                created_at=pending.reserved_at,
                extra={REUSED_METADATA: True},
            )
        try:
            reservation = ledger.reserve(
                window_start=start,
                window_end=end,
                run_id=context.run.run_id,
                shared_org_ids=circleci.shared_org_ids,
            )
        except QuotaExhaustedError as exc:
            raise dg.Failure(
                description=str(exc), metadata=quota_metadata(ledger.status()), allow_retries=False
            ) from None

        try:
            job = client.create_export(start, end, circleci.shared_org_ids)
        except RateLimitedError as exc:
            retry_after = (
                timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
            )
            ledger.record(
                reservation, PostOutcome.RATE_LIMITED, detail=str(exc), retry_after=retry_after
            )
            raise _failure(f"CircleCI refused the POST: quota spent. {exc}", ledger) from None
        except CreateNotSentError as exc:
            ledger.record(reservation, PostOutcome.NOT_SENT, detail=str(exc))
            raise _failure(str(exc), ledger) from None
        except CreateOutcomeUnknownError as exc:
            ledger.record(reservation, PostOutcome.NO_ANSWER, detail=str(exc))
            raise _failure(str(exc), ledger) from None
        except ServerError as exc:
            ledger.record(reservation, PostOutcome.SERVER_ERROR, detail=str(exc))
            raise _failure(str(exc), ledger) from None
        except UnexpectedResponseError as exc:
            if exc.status_code is not None and 200 <= exc.status_code < 300:
                ledger.record(reservation, PostOutcome.UNREADABLE_ANSWER, detail=str(exc))
                raise _failure(
                    f"{exc}. CircleCI accepted the POST, so an export job was probably created "
                    "and a POST slot spent; its id is unknown, so nothing will download it: "
                    "re-materialize these days when the quota allows.",
                    ledger,
                ) from None
            ledger.record(reservation, PostOutcome.REFUSED, detail=str(exc))
            raise _failure(str(exc), ledger) from None
        except UsageApiError as exc:
            ledger.record(reservation, PostOutcome.REFUSED, detail=str(exc))
            raise _failure(str(exc), ledger) from None

    # The job exists now: its id goes to the event log before anything that can fail (a full
    # disk under the ledger, say), so it is never lost; the materialization below carries it
    # to the sensor, which downloads it.
    context.log.info(
        f"Created export job {job.id} for {body['start']} .. {body['end']} "
        f"({len(context.partition_keys)} day(s), one POST)"
    )
    extra: dict[str, Any] = {}
    try:
        ledger.record(reservation, PostOutcome.CREATED, export_job_id=job.id)
    except (sqlite3.Error, OSError) as exc:
        context.log.warning(
            f"Export job {job.id} was created, but the quota ledger ({post_quota.ledger_path}) "
            f"could not record it: {exc}. Its slot stays counted as spent; the export is "
            "materialized and will be downloaded. Free space there before the next POST."
        )
        extra["ledger_error"] = str(exc)
    return _materialize(
        context,
        circleci,
        ledger,
        body,
        export_job_id=job.id,
        state=job.state,
        created_at=reservation.reserved_at,
        extra=extra,
    )


@dataclass(frozen=True)
class _PendingExport:
    export_job_id: str
    reserved_at: datetime
    state: ExportState


# At most this many earlier identical requests are looked up (one GET each) before a POST.
_MAX_REUSE_LOOKUPS = 3


def _pending_export_for_same_request(
    context: dg.AssetExecutionContext,
    client: UsageApiClient,
    ledger: PostQuotaLedger,
    start: datetime,
    end: datetime,
    circleci: CircleCIUsageResource,
) -> _PendingExport | None:
    """An export created for exactly this window and these shared orgs that CircleCI still
    reports as pending: the same backfill launched twice then spends one POST, not two.

    Only pending exports are reused: re-exporting days whose export already completed is how a
    user refreshes them, and gets a new export."""
    since = utc_now() - STUCK_AFTER  # older than that is stuck, and the sensor re-creates it
    candidates = ledger.created_exports(
        window_start=start, window_end=end, shared_org_ids=circleci.shared_org_ids, since=since
    )
    for candidate in candidates[:_MAX_REUSE_LOOKUPS]:
        try:
            job = client.get_export(candidate.export_job_id)
        except UsageApiError as exc:
            context.log.info(f"Could not read earlier export {candidate.export_job_id}: {exc}")
            continue
        if not job.state.is_terminal:
            return _PendingExport(candidate.export_job_id, candidate.reserved_at, job.state)
    return None


def _materialize(
    context: dg.AssetExecutionContext,
    circleci: CircleCIUsageResource,
    ledger: PostQuotaLedger,
    body: dict[str, Any],
    *,
    export_job_id: str,
    state: ExportState,
    created_at: datetime,
    extra: dict[str, Any],
) -> dg.MaterializeResult:
    key_range = context.partition_key_range
    tags = context.run.tags
    metadata: dict[str, Any] = {
        EXPORT_ID_METADATA: export_job_id,
        "window_start": body["start"],
        "window_end": body["end"],
        PARTITION_RANGE_METADATA: format_partition_range(key_range.start, key_range.end),
        STATE_METADATA: state.value,
        # To the microsecond: two exports made within a second must still be told apart.
        EXPORT_CREATED_AT_METADATA: created_at.astimezone(UTC).isoformat(),
        "shared_org_ids": ", ".join(circleci.shared_org_ids) or "none",
        ATTEMPT_METADATA: int(tags.get(ATTEMPT_TAG, "1")),
        **extra,
    }
    try:
        metadata.update(quota_metadata(ledger.status()))
    except (sqlite3.Error, OSError) as exc:
        context.log.warning(f"Could not read the quota ledger for this run's metadata: {exc}")
    if RECREATES_TAG in tags:
        metadata[RECREATES_METADATA] = tags[RECREATES_TAG]
    return dg.MaterializeResult(metadata=metadata)


def _failure(message: str, ledger: PostQuotaLedger) -> dg.Failure:
    # Not retried by Dagster: every retry would spend another POST.
    return dg.Failure(
        description=message, metadata=quota_metadata(ledger.status()), allow_retries=False
    )
