"""`usage_export_job_sensor`: polls pending exports and launches their download and load.

A tick only reads the event log and makes a few cheap GETs (bounded per tick, paused after a 429),
never downloads: a sensor tick must finish within about a minute. A completed export becomes exactly
one Dagster run per export id (the run key), covering the export's whole range.
"""

from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from usage_assets.circleci import (
    ExportState,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    UsageApiError,
)
from usage_assets.circleci.timestamps import utc_now
from usage_assets.defs.constants import (
    ATTEMPT_METADATA,
    ATTEMPT_TAG,
    EXPORT_ASSET_KEY,
    EXPORT_ID_METADATA,
    EXPORT_ID_TAG,
    PARTITION_RANGE_METADATA,
    RECREATES_TAG,
    RUN_ATTEMPT_TAG,
    STATE_METADATA,
    WAREHOUSE_POOL,
    range_tags,
)
from usage_assets.defs.partitions import partition_day, partition_keys_between
from usage_assets.defs.resources import CircleCIUsageResource, PostQuotaResource
from usage_assets.defs.usage.export_lookup import parse_partition_range
from usage_assets.defs.usage.jobs import create_usage_export, download_and_load_usage
from usage_assets.ingest.pending_exports import (
    MAX_RUN_ATTEMPTS,
    Action,
    Decision,
    LaunchedRun,
    PendingExport,
    RunKind,
    RunStatus,
    SensorCursor,
    decide,
    follow_up,
)

RUN_KEY_TAG = "dagster/run_key"  # Dagster's own tag on runs a sensor requested


def _new_export_jobs(
    context: dg.SensorEvaluationContext, cursor: SensorCursor, now: datetime
) -> None:
    """Add export jobs materialized since the last tick to the pending set.

    The read starts at the settled storage id and re-reads what recent ticks saw (skipped by
    storage id): on PostgreSQL an earlier id can commit after a later one was read."""
    result = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EXPORT_ASSET_KEY, after_storage_id=cursor.after_storage_id),
        limit=1000,
        ascending=True,
    )
    found: dict[str, PendingExport] = {}
    handled = cursor.handled_exports()
    for record in result.records:
        materialization = record.asset_materialization
        export_id_value = (
            materialization.metadata.get(EXPORT_ID_METADATA) if materialization else None
        )
        export_id = str(export_id_value.value) if export_id_value is not None else None
        if not cursor.first_sight(record.storage_id, export_id, now) or export_id in handled:
            continue
        if materialization is None or record.partition_key is None or export_id is None:
            continue
        attempt_value = materialization.metadata.get(ATTEMPT_METADATA)
        # The run may still be writing the job's other partitions: take the whole range it names.
        range_value = materialization.metadata.get(PARTITION_RANGE_METADATA)
        first, last = (
            parse_partition_range(str(range_value.value)) if range_value is not None else None
        ) or (record.partition_key, record.partition_key)
        previous = found.get(export_id)
        found[export_id] = PendingExport(
            export_id=export_id,
            first_partition=min(first, previous.first_partition if previous else first),
            last_partition=max(last, previous.last_partition if previous else last),
            seen_at=datetime.fromtimestamp(record.timestamp, tz=utc_now().tzinfo).isoformat(),
            attempt=int(attempt_value.value) if attempt_value is not None else 1,  # type: ignore[arg-type]
        )
    for export in found.values():
        cursor.track(export)
    cursor.settle(now)


def _observations(decision: Decision, error_reason: str | None) -> list[dg.AssetObservation]:
    """One observation per partition, so each partition's page in the UI shows the export's state."""
    export = decision.export
    metadata: dict[str, Any] = {
        EXPORT_ID_METADATA: export.export_id,
        STATE_METADATA: export.state,
        ATTEMPT_METADATA: export.attempt,
    }
    if decision.reason:
        metadata["note"] = decision.reason
    if error_reason:
        metadata["error_reason"] = error_reason
    keys = partition_keys_between(
        partition_day(export.first_partition), partition_day(export.last_partition)
    )
    return [
        dg.AssetObservation(asset_key=EXPORT_ASSET_KEY, partition=key, metadata=metadata)
        for key in keys
    ]


SENSOR_NAME = "usage_export_job_sensor"


# How long after a download or re-create run failed it is requested again (a 429's wait, a
# burst of 5xx, or a CircleCI hiccup usually passes in minutes).
RUN_RETRY_DELAY = timedelta(minutes=5)


def apply_pool_limit(instance: dg.DagsterInstance, pool: str, limit: int) -> int | None:
    """Set `pool`'s slot count on the instance to `limit` when it differs; the previous limit if
    it changed anything, else None.

    dagster.yaml has one default limit for every pool (`concurrency.pools.default_limit`), no
    per-pool entry, so `usage_warehouse_writer`'s own limit (USAGE_WAREHOUSE_WRITERS) lives in the
    instance's storage, as `dagster instance concurrency set usage_warehouse_writer N` would set
    it. One indexed read per tick when nothing changes; idempotent."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    info = storage.get_concurrency_info(pool)
    current = info.limit
    if current == limit:
        return None
    if limit == 1 and (current is None or info.using_default_limit):
        # The default setting: leave the pool to dagster.yaml's default_limit, as before.
        return None
    storage.set_concurrency_slots(pool, limit)
    return current if current is not None else 0


def build_usage_export_sensor(
    *,
    minimum_interval_seconds: int,
    max_gets_per_tick: int,
    run_retry_delay: timedelta = RUN_RETRY_DELAY,
    warehouse_writers: int = 1,
) -> dg.SensorDefinition:
    """The sensor, with its tick interval and its GET budget per tick (CircleCI rate-limits GETs;
    `USAGE_SENSOR_INTERVAL_SECONDS` and `USAGE_SENSOR_MAX_GETS_PER_TICK` in definitions.py), and
    the wait before a failed run it launched is requested again. Each tick also keeps the
    warehouse pool's limit at `warehouse_writers` (USAGE_WAREHOUSE_WRITERS, see
    `apply_pool_limit`)."""

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=[create_usage_export, download_and_load_usage],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Polls CircleCI for pending usage export jobs; launches the download and load "
        "when one completes.",
    )
    def usage_export_job_sensor(
        context: dg.SensorEvaluationContext,
        circleci: CircleCIUsageResource,
        post_quota: PostQuotaResource,
    ) -> dg.SensorResult:
        previous = apply_pool_limit(context.instance, WAREHOUSE_POOL, warehouse_writers)
        if previous is not None:
            context.log.info(
                f"Pool {WAREHOUSE_POOL}: limit set to {warehouse_writers} (was {previous}), "
                "from USAGE_WAREHOUSE_WRITERS"
            )
        return _tick(context, circleci, post_quota, max_gets_per_tick, run_retry_delay)

    return usage_export_job_sensor


def _tick(
    context: dg.SensorEvaluationContext,
    circleci: CircleCIUsageResource,
    post_quota: PostQuotaResource,
    max_gets_per_tick: int,
    run_retry_delay: timedelta,
) -> dg.SensorResult:
    """One tick: request again the launched runs that failed, track new exports, poll the ones
    due (at most `max_gets_per_tick` GETs), and turn each decision into run requests and
    per-partition observations."""
    cursor = SensorCursor.parse(context.cursor)
    now = utc_now()
    run_requests = _follow_up_launched_runs(context, cursor, now, run_retry_delay)
    _new_export_jobs(context, cursor, now)
    if cursor.pause_until and datetime.fromisoformat(cursor.pause_until) > now:
        return dg.SensorResult(
            run_requests=run_requests,
            skip_reason=None
            if run_requests
            else f"GET rate limit hit; paused until {cursor.pause_until}",
            cursor=cursor.serialize(),
        )
    cursor.pause_until = None
    if not cursor.pending:
        return dg.SensorResult(
            run_requests=run_requests,
            skip_reason=None if run_requests else "no pending export jobs",
            cursor=cursor.serialize(),
        )

    events: list[dg.AssetObservation] = []
    quota_left = post_quota.ledger(circleci.api_url, circleci.org_id).status().left
    # One attempt per GET: a failed poll is simply retried next tick, and the tick stays short.
    with circleci.get_client(retry=RetryPolicy(max_attempts=1)) as client:
        for export in cursor.due_for_poll(max_gets_per_tick):
            try:
                status = client.get_export(export.export_id)
                state, error_reason = status.state, status.error_reason
            except RateLimitedError as exc:
                pause = exc.retry_after if exc.retry_after is not None else 60.0
                cursor.pause_until = datetime.fromtimestamp(
                    now.timestamp() + pause, tz=now.tzinfo
                ).isoformat()
                context.log.warning(f"GET rate limit reached; pausing polls for {pause:.0f} s")
                break
            except NotFoundError:
                # The API no longer knows the job (or the simulator restarted): treat it as failed.
                state, error_reason = ExportState.FAILED, "export job not found"
            except UsageApiError as exc:
                context.log.warning(
                    f"Polling export {export.export_id} failed, will retry next tick: {exc}"
                )
                continue
            decision = decide(export, state, now, error_reason=error_reason, quota_left=quota_left)
            if decision.state_changed or decision.action is not Action.WAIT:
                events.extend(_observations(decision, error_reason))
            if decision.action is Action.DOWNLOAD:
                launched = LaunchedRun(RunKind.DOWNLOAD, export)
                run_requests.append(run_request_for(launched))
                cursor.launched.append(launched)
                del cursor.pending[export.export_id]
            elif decision.action is Action.RECREATE:
                quota_left -= 1
                launched = LaunchedRun(RunKind.RECREATE, export)
                run_requests.append(run_request_for(launched))
                cursor.launched.append(launched)
                context.log.warning(f"Export {export.export_id} {decision.reason}; re-creating it")
                del cursor.pending[export.export_id]
            elif decision.action is Action.GIVE_UP:
                context.log.error(f"Export {export.export_id} {decision.reason}")
                del cursor.pending[export.export_id]
            else:
                cursor.pending[export.export_id] = decision.export

    return dg.SensorResult(
        run_requests=run_requests, asset_events=events, cursor=cursor.serialize()
    )


def run_request_for(run: LaunchedRun) -> dg.RunRequest:
    """The run request of a download or re-create, with its attempt's run key."""
    export = run.export
    tags = {
        **range_tags(export.first_partition, export.last_partition),
        RUN_ATTEMPT_TAG: str(run.run_attempt),
    }
    if run.kind is RunKind.DOWNLOAD:
        return dg.RunRequest(
            run_key=run.run_key,
            job_name=download_and_load_usage.name,
            tags={**tags, EXPORT_ID_TAG: export.export_id},
        )
    return dg.RunRequest(
        run_key=run.run_key,
        job_name=create_usage_export.name,
        tags={**tags, RECREATES_TAG: export.export_id, ATTEMPT_TAG: str(export.attempt + 1)},
    )


_FINISHED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
_IN_PROGRESS = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def _run_status(instance: dg.DagsterInstance, run_key: str) -> RunStatus:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    if not runs:
        return RunStatus.NOT_STARTED
    status = runs[0].status
    if status is dg.DagsterRunStatus.SUCCESS:
        return RunStatus.SUCCEEDED
    if status in _FINISHED_BADLY:
        return RunStatus.FAILED
    return RunStatus.IN_PROGRESS if status in _IN_PROGRESS else RunStatus.NOT_STARTED


def _follow_up_launched_runs(
    context: dg.SensorEvaluationContext,
    cursor: SensorCursor,
    now: datetime,
    retry_delay: timedelta,
) -> list[dg.RunRequest]:
    """Requests for the launched runs that failed and may be tried again; forgets the ones
    that succeeded or are out of attempts."""
    requests: list[dg.RunRequest] = []
    still_watched: list[LaunchedRun] = []
    for run in cursor.launched:
        outcome = follow_up(run, _run_status(context.instance, run.run_key), now, retry_delay)
        if outcome.gave_up:
            context.log.error(
                f"Run {run.run_key} failed, attempt {run.run_attempt} of {MAX_RUN_ATTEMPTS}; "
                f"not requesting it again. Re-materialize partitions {run.export.first_partition}"
                f" .. {run.export.last_partition} from the UI once the cause is fixed."
            )
        elif outcome.retry is not None:
            context.log.warning(
                f"Run {run.run_key} failed; requesting it again as {outcome.retry.run_key} "
                f"(attempt {outcome.retry.run_attempt} of {MAX_RUN_ATTEMPTS})"
            )
            requests.append(run_request_for(outcome.retry))
            still_watched.append(outcome.retry)
        elif outcome.keep is not None:
            still_watched.append(outcome.keep)
    cursor.launched = still_watched
    return requests
