"""Dagster resources: the Usage API client and the POST quota guard.

Both are thin: the HTTP lives in `usage_assets.circleci`, the ledger in `usage_assets.ingest.quota_ledger`. They
exist so that assets, the sensor and tests get them by name, configured from the environment.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from usage_assets.circleci import DEFAULT_BASE_URL, DownloadPace, RetryPolicy, UsageApiClient
from usage_assets.circleci.vocabulary import is_uuid
from usage_assets.ingest.lake import LakeLocation, connect_lake, day_locks
from usage_assets.ingest.quota_ledger import (
    QUOTA_LEDGER_URL_ENV,
    PostQuotaLedger,
    QuotaStatus,
    is_postgres_url,
    redacted,
)
from usage_assets.insights.reference_data import (
    ReferenceData,
    ReferenceDataError,
    load_reference_data,
)

# "No space left on device" and "disk quota exceeded": what a full disk looks like to a write.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


# Less free space than this where a load writes, and its failure is taken as the disk being full.
_NEARLY_FULL_BYTES = 1 << 20


def is_disk_full(exc: BaseException, written: Sequence[Path] = ()) -> bool:
    """Whether a failed write (ours, polars' or DuckDB's) ran out of disk space.

    DuckDB says so in its message only, and polars not even there (a Parquet write on a full disk
    fails as "Invalid thrift: transport error"), so a failure while a folder in `written` has
    almost no space left counts too."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
        return True
    for folder in written:
        with suppress(OSError):
            if shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES:
                return True
    return False


class CircleCIUsageResource(dg.ConfigurableResource):
    """Access to one organization's usage exports.

    `token` and `org_id` come from `CIRCLECI_TOKEN` / `CIRCLECI_ORG_ID` as `EnvVar`s, so the UI shows
    the variable's name, never its value. `api_url` points at the embedded simulator in the demo and
    tests, and defaults to CircleCI itself.
    """

    token: str = Field(description="CircleCI personal API token (CIRCLECI_TOKEN).")
    org_id: str = Field(description="Organization UUID (CIRCLECI_ORG_ID).")
    api_url: str = Field(
        default=DEFAULT_BASE_URL, description="Usage API base URL (CIRCLECI_API_URL)."
    )
    shared_org_ids: list[str] = Field(
        default_factory=list, description="Extra orgs on a shared plan (CIRCLECI_SHARED_ORG_IDS)."
    )
    links_recheck_seconds: float = Field(
        default=60.0,
        description="How long a download run keeps re-reading an export that completed without "
        "download links before taking it as empty (CircleCI can list links late).",
    )
    download_min_bytes_per_second: float = Field(
        default=DownloadPace.min_bytes_per_second,
        description="Slowest average download speed accepted after the grace period; a slower "
        "part is abandoned and fetched again from a fresh link.",
    )
    download_grace_seconds: float = Field(
        default=DownloadPace.grace_seconds,
        description="Seconds a part may download at any speed before the minimum applies.",
    )

    def get_client(self, *, retry: RetryPolicy | None = None) -> UsageApiClient:
        """A new client; use it as a context manager so its connections are closed."""
        if not is_uuid(self.org_id):
            raise dg.Failure(
                description=(
                    f"CIRCLECI_ORG_ID={self.org_id!r} is not an organization UUID. Copy the id from "
                    "CircleCI > Organization Settings > Overview (not the gh/org slug)."
                ),
                allow_retries=False,
            )
        return UsageApiClient(
            self.token,
            self.org_id,
            base_url=self.api_url,
            retry=retry,
            download_pace=DownloadPace(
                min_bytes_per_second=self.download_min_bytes_per_second,
                grace_seconds=self.download_grace_seconds,
            ),
        )


class PostQuotaResource(dg.ConfigurableResource):
    """Guards CircleCI's create-export POST quota (about 10 per org per day).

    The ledger is shared by every process, keyed by API base URL and org, so runs against the
    simulator never spend a real org's quota: a SQLite file for one host, or a PostgreSQL database
    when `ledger_url` is set (runs on several hosts).
    """

    ledger_path: str = Field(description="SQLite ledger file ($USAGE_DATA_DIR/post_quota.sqlite).")
    ledger_url: str = Field(
        default="",
        description=f"PostgreSQL URL of a shared ledger ({QUOTA_LEDGER_URL_ENV}); empty: the "
        "SQLite file. Given as an EnvVar, so the UI shows the variable's name, never the password.",
    )
    max_posts: int = Field(default=10, description="POSTs allowed per window (USAGE_POST_QUOTA).")
    window_hours: float = Field(
        default=24.0, description="Quota window (USAGE_POST_QUOTA_WINDOW_HOURS)."
    )

    def ledger(self, api_url: str, org_id: str) -> PostQuotaLedger:
        if self.ledger_url and not is_postgres_url(self.ledger_url):
            raise dg.Failure(
                description=f"{QUOTA_LEDGER_URL_ENV} must be a postgresql:// URL, got "
                f"{redacted(self.ledger_url)!r}",
                allow_retries=False,
            )
        return PostQuotaLedger(
            self.ledger_url or Path(self.ledger_path),
            api_url=api_url,
            org_id=org_id,
            limit=self.max_posts,
            window=timedelta(hours=self.window_hours),
        )


def quota_metadata(status: QuotaStatus) -> dict[str, dg.MetadataValue]:
    """What the UI shows about the quota on every POST attempt and sensor tick."""
    next_slot = status.blocked_until or status.next_slot_at
    return {
        "quota_used": dg.MetadataValue.int(status.used),
        "quota_left": dg.MetadataValue.int(status.left),
        "quota_limit": dg.MetadataValue.int(status.limit),
        "quota_next_slot_at": dg.MetadataValue.text(
            next_slot.isoformat(timespec="seconds") if next_slot else "now"
        ),
    }


class RawStoreResource(dg.ConfigurableResource):
    """Where downloaded export parts are kept ($USAGE_DATA_DIR/raw)."""

    raw_dir: str = Field(description="Folder for raw export parts ($USAGE_DATA_DIR/raw).")

    @property
    def root(self) -> Path:
        return Path(self.raw_dir)

    @property
    def staging_root(self) -> Path:
        """Where loads stage cleaned parts: beside the raw files, on the same disk (not the
        system temp dir, often a small RAM-backed tmpfs), so a killed load's leftovers are
        swept by the next load."""
        return Path(self.raw_dir).parent / "staging"


class InsightsResource(dg.ConfigurableResource):
    """Where the insights read the user's reference files and write the HTML report."""

    reference_dir: str = Field(
        description="Folder of resource_classes.csv, price_per_credit.csv, ... (USAGE_REFERENCE_DIR)."
    )
    report_path: str = Field(description="The HTML usage report (USAGE_REPORT_PATH).")

    def reference_data(self) -> ReferenceData:
        """The reference files, read now (an edit applies to the next run, no restart needed)."""
        try:
            return load_reference_data(Path(self.reference_dir))
        except ReferenceDataError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None


class WarehouseResource(DuckDBResource):
    """`DuckDBResource`, or, when `lake_catalog_url` is set, the same engine on a DuckLake.

    A lake connection is an in-memory DuckDB that LOADs the packaged extensions, ATTACHes the lake
    and USEs it, so every query of the pipeline runs unchanged on either (see
    `usage_assets.ingest.lake`). `database` is the DuckDB file and is ignored for a lake.
    """

    lake_catalog_url: str = Field(
        default="",
        description="PostgreSQL URL of the DuckLake catalog (USAGE_LAKE_CATALOG_URL); empty: the "
        "DuckDB file. Given as an EnvVar, so the UI shows the variable's name, never the password.",
    )
    lake_data_path: str = Field(
        default="",
        description="Where the lake's Parquet files live (USAGE_LAKE_DATA_PATH): a folder every "
        "worker reaches, or s3://bucket/prefix/.",
    )

    @property
    def lake(self) -> LakeLocation | None:
        if not self.lake_catalog_url:
            return None
        return LakeLocation(catalog_url=self.lake_catalog_url, data_path=self.lake_data_path)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        lake = self.lake
        if lake is None:
            with super().get_connection() as conn:
                yield conn
            return
        conn = connect_lake(lake, config={"custom_user_agent": "dagster", **self.connection_config})
        try:
            yield conn
        finally:
            conn.close()


WindowLock = Callable[[date, date], AbstractContextManager[None]]


def warehouse_window_lock(warehouse: DuckDBResource) -> WindowLock:
    """What a load holds around its window: per-day locks on a lake (overlapping loads of other
    processes wait), nothing on the DuckDB file (one writer at a time, by the pool)."""
    lake = warehouse.lake if isinstance(warehouse, WarehouseResource) else None
    if lake is None:
        return lambda first, last: nullcontext()
    catalog_url = lake.catalog_url
    return lambda first, last: day_locks(catalog_url, first, last)


def warehouse_disk(warehouse: DuckDBResource) -> Path:
    """The folder a load writes the warehouse's data to, for the disk-full diagnosis."""
    lake = warehouse.lake if isinstance(warehouse, WarehouseResource) else None
    if lake is not None and not lake.data_path.startswith("s3://"):
        return Path(lake.data_path)
    return Path(warehouse.database).parent


@contextmanager
def warehouse_connection(warehouse: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """`DuckDBResource.get_connection`, closed even when the body raises.

    dagster-duckdb closes its connection only on success; a leaked one keeps the file locked in
    this process, and a later open with other settings fails.
    """
    with warehouse.get_connection() as conn:
        try:
            yield conn
        finally:
            conn.close()
