"""`usage_export_job`: one create-export POST per run, for the run's whole partition range.

A UI backfill over N days is split into runs of at most 31 partitions (the backfill policy), so it
spends ceil(N / 31) POSTs, not N. The POST is guarded by the quota ledger and serialized across runs
by the `circleci_export_post` pool, so the check-then-POST cannot race.
"""

from datetime import timedelta
from typing import Any

import dagster as dg

from usage_assets.circleci import (
    CreateNotSentError,
    CreateOutcomeUnknownError,
    InvalidExportRequestError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    UsageApiError,
)
from usage_assets.circleci.timestamps import format_rfc3339, utc_now
from usage_assets.defs.constants import (
    ATTEMPT_METADATA,
    ATTEMPT_TAG,
    EXPORT_ID_METADATA,
    OWNERS,
    PARTITION_RANGE_METADATA,
    POST_POOL,
    RECREATES_METADATA,
    RECREATES_TAG,
    STATE_METADATA,
    USAGE_GROUP,
)
from usage_assets.defs.partitions import MAX_PARTITIONS_PER_EXPORT, daily_partitions, export_window
from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource, quota_metadata
from usage_assets.defs.usage.export_lookup import format_partition_range
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
        try:
            reservation = ledger.reserve(
                window_start=start, window_end=end, run_id=context.run.run_id
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
        ledger.record(reservation, PostOutcome.CREATED, export_job_id=job.id)

    context.log.info(
        f"Created export job {job.id} for {body['start']} .. {body['end']} "
        f"({len(context.partition_keys)} day(s), one POST)"
    )
    tags = context.run.tags
    metadata: dict[str, Any] = {
        EXPORT_ID_METADATA: job.id,
        "window_start": body["start"],
        "window_end": body["end"],
        PARTITION_RANGE_METADATA: format_partition_range(key_range.start, key_range.end),
        STATE_METADATA: job.state.value,
        "requested_at": format_rfc3339(utc_now()),
        "shared_org_ids": ", ".join(circleci.shared_org_ids) or "none",
        ATTEMPT_METADATA: int(tags.get(ATTEMPT_TAG, "1")),
        **quota_metadata(ledger.status()),
    }
    if RECREATES_TAG in tags:
        metadata[RECREATES_METADATA] = tags[RECREATES_TAG]
    return dg.MaterializeResult(metadata=metadata)


def _failure(message: str, ledger: PostQuotaLedger) -> dg.Failure:
    # Not retried by Dagster: every retry would spend another POST.
    return dg.Failure(
        description=message, metadata=quota_metadata(ledger.status()), allow_retries=False
    )
