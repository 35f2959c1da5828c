"""Pipeline settings from environment variables, checked once, with errors that name the variable.

The token and org id are not read here: they reach the resources as `dagster.EnvVar`s, so their
values never appear in the UI or in run config.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from usage_assets.circleci.client import DEFAULT_BASE_URL
from usage_assets.circleci.vocabulary import is_uuid

# The reference files shipped with the code, versioned with it; USAGE_REFERENCE_DIR points elsewhere.
DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


class ConfigError(ValueError):
    """A missing or malformed environment variable."""


@dataclass(frozen=True)
class PipelineConfig:
    api_url: str
    shared_org_ids: tuple[str, ...]
    data_dir: Path
    duckdb_path: str  # a file path, or a MotherDuck database such as md:ci_usage
    start_date: date
    post_quota: int
    post_quota_window_hours: float
    daily_schedule_hour: int
    weekly_schedule_hour: int
    sensor_interval_seconds: int
    sensor_max_gets_per_tick: int
    reference_dir: Path  # the user-editable reference files (resource classes, prices, ...)
    report_path: Path  # the self-contained HTML usage report
    # When yesterday's partition must be loaded (and the report and forecast rebuilt), UTC.
    freshness_deadline_cron: str
    # The warehouse as a DuckLake (catalog in PostgreSQL) when set; None: the DuckDB file. Holds a
    # password: the resource gets it as an EnvVar, nothing logs it.
    lake_catalog_url: str | None = None
    lake_data_path: str = ""  # the lake's Parquet files: a shared folder or an s3:// URL
    # Loads allowed to write the warehouse at once (the usage_warehouse_writer pool's limit).
    warehouse_writers: int = 1

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def ledger_path(self) -> Path:
        # Beside the raw files, never inside the DuckDB file: DuckDB admits one process at a time.
        return self.data_dir / "post_quota.sqlite"


def default_start_date(today: date) -> date:
    """The first whole month inside the API's look-back: stable for a month at a time (a start that
    moved daily would reshape the partitions daily) and never older than the API will export."""
    earliest = today - timedelta(days=365)
    if earliest.day == 1:
        return earliest
    return date(earliest.year + earliest.month // 12, earliest.month % 12 + 1, 1)


def load_config(
    environ: Mapping[str, str] | None = None, *, today: date | None = None
) -> PipelineConfig:
    env = os.environ if environ is None else environ
    today = today or datetime.now(UTC).date()

    api_url = _get(env, "CIRCLECI_API_URL") or DEFAULT_BASE_URL
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigError(
            f"CIRCLECI_API_URL={api_url!r} is not an http(s) base URL such as {DEFAULT_BASE_URL}"
        )

    shared = tuple(
        s.strip() for s in (_get(env, "CIRCLECI_SHARED_ORG_IDS") or "").split(",") if s.strip()
    )
    for org in shared:
        if not is_uuid(org):
            raise ConfigError(
                f"CIRCLECI_SHARED_ORG_IDS holds {org!r}, which is not an organization UUID "
                "(comma-separated UUIDs from Organization Settings > Overview)"
            )

    _check_token(env)
    data_dir = Path(_get(env, "USAGE_DATA_DIR") or "./data").expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(
            f"USAGE_DATA_DIR={data_dir} is a file; point it at a directory (it holds the raw "
            "files, the quota ledger and the warehouse)"
        )
    # The folder, or the nearest parent that exists (the folder is created on first use).
    existing = next(path for path in (data_dir, *data_dir.parents) if path.exists())
    if not os.access(existing, os.W_OK):
        raise ConfigError(
            f"USAGE_DATA_DIR={data_dir} cannot be written ({existing} is read-only or not "
            "yours): point it at a writable directory (it holds the raw files, the quota ledger "
            "and the warehouse)"
        )
    duckdb_text = _get(env, "USAGE_DUCKDB_PATH")
    if duckdb_text and duckdb_text.startswith("md:"):
        duckdb_path = duckdb_text
    else:
        duckdb_path = str(Path(duckdb_text or data_dir / "usage.duckdb").expanduser().resolve())

    start_text = _get(env, "USAGE_START_DATE")
    if start_text:
        try:
            start_date = date.fromisoformat(start_text)
        except ValueError:
            raise ConfigError(
                f"USAGE_START_DATE={start_text!r} is not a date like 2025-12-01"
            ) from None
        if start_date >= today:
            raise ConfigError(f"USAGE_START_DATE={start_text} must be before today ({today})")
    else:
        start_date = default_start_date(today)

    reference_text = _get(env, "USAGE_REFERENCE_DIR")
    reference_dir = (
        Path(reference_text).expanduser().resolve() if reference_text else DEFAULT_REFERENCE_DIR
    )
    if not reference_dir.is_dir():
        raise ConfigError(
            f"USAGE_REFERENCE_DIR={reference_text!r} is not a directory; point it at a copy of "
            f"{DEFAULT_REFERENCE_DIR}"
        )
    lake_catalog_url, lake_data_path, warehouse_writers = _lake_settings(env, data_dir)

    report_text = _get(env, "USAGE_REPORT_PATH")
    report_path = Path(report_text or data_dir / "reports" / "usage_report.html").expanduser()

    return PipelineConfig(
        api_url=api_url.rstrip("/"),
        shared_org_ids=shared,
        data_dir=data_dir,
        duckdb_path=duckdb_path,
        start_date=start_date,
        post_quota=_int(env, "USAGE_POST_QUOTA", 10, minimum=1),
        post_quota_window_hours=_float(
            env, "USAGE_POST_QUOTA_WINDOW_HOURS", 24.0, maximum=MAX_QUOTA_WINDOW_HOURS
        ),
        daily_schedule_hour=_int(env, "USAGE_DAILY_SCHEDULE_HOUR", 6, minimum=0, maximum=23),
        weekly_schedule_hour=_int(env, "USAGE_WEEKLY_SCHEDULE_HOUR", 7, minimum=0, maximum=23),
        sensor_interval_seconds=_int(env, "USAGE_SENSOR_INTERVAL_SECONDS", 60, minimum=1),
        sensor_max_gets_per_tick=_int(env, "USAGE_SENSOR_MAX_GETS_PER_TICK", 5, minimum=1),
        reference_dir=reference_dir,
        report_path=report_path.resolve(),
        freshness_deadline_cron=_daily_cron(
            env, "USAGE_FRESHNESS_DEADLINE_CRON", DEFAULT_FRESHNESS_DEADLINE_CRON
        ),
        lake_catalog_url=lake_catalog_url,
        lake_data_path=lake_data_path,
        warehouse_writers=warehouse_writers,
    )


# More concurrent writers than this is a typo; each holds a DuckDB with its own memory limit.
MAX_WAREHOUSE_WRITERS = 32


def _lake_settings(env: Mapping[str, str], data_dir: Path) -> tuple[str | None, str, int]:
    """USAGE_LAKE_CATALOG_URL, USAGE_LAKE_DATA_PATH and USAGE_WAREHOUSE_WRITERS, checked together:
    several writers need the lake (a DuckDB file admits one writing process)."""
    catalog_url = _get(env, "USAGE_LAKE_CATALOG_URL")
    if catalog_url is not None:
        parts = urlsplit(catalog_url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            # Never echo the value: it may hold a password.
            raise ConfigError(
                "USAGE_LAKE_CATALOG_URL must be a postgresql://user:password@host:port/dbname "
                f"URL (the DuckLake catalog database), got a {parts.scheme or 'schemeless'} value "
                "(not shown)"
            )
        if not parts.path.strip("/"):
            raise ConfigError(
                "USAGE_LAKE_CATALOG_URL names no database: add /dbname "
                "(postgresql://user:password@host:port/dbname)"
            )
    data_text = _get(env, "USAGE_LAKE_DATA_PATH")
    if data_text is not None and "://" in data_text and not data_text.startswith("s3://"):
        raise ConfigError(
            f"USAGE_LAKE_DATA_PATH={data_text!r} must be a folder every worker reaches or an "
            "s3://bucket/prefix/ URL"
        )
    if data_text is not None and catalog_url is None:
        raise ConfigError(
            "USAGE_LAKE_DATA_PATH is set but USAGE_LAKE_CATALOG_URL is not: the data path only "
            "applies to a DuckLake warehouse"
        )
    if data_text is not None and data_text.startswith("s3://"):
        data_path = data_text if data_text.endswith("/") else data_text + "/"
    else:
        folder = Path(data_text).expanduser().resolve() if data_text else data_dir / "lake"
        data_path = f"{folder}/"
    writers = _int(env, "USAGE_WAREHOUSE_WRITERS", 1, minimum=1, maximum=MAX_WAREHOUSE_WRITERS)
    if writers > 1 and catalog_url is None:
        raise ConfigError(
            f"USAGE_WAREHOUSE_WRITERS={writers} needs a DuckLake warehouse "
            "(USAGE_LAKE_CATALOG_URL): the DuckDB file admits one writing process"
        )
    return catalog_url, data_path if catalog_url is not None else "", writers


# Noon UTC: six hours after the default daily export (06:00), time for CircleCI to complete it
# (minutes, occasionally hours) and for the sensor's download run to load it.
DEFAULT_FRESHNESS_DEADLINE_CRON = "0 12 * * *"

# A quota window longer than a year is a typo, not a plan.
MAX_QUOTA_WINDOW_HOURS = 24.0 * 366


@functools.cache
def current_config() -> PipelineConfig:
    """The process's configuration, read once: partitions and definitions must agree on it."""
    return load_config()


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def _int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    text = _get(env, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = (
            f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        )
        raise ConfigError(f"{name}={value} must be {bounds}")
    return value


def _check_token(env: Mapping[str, str]) -> None:
    """A token with whitespace (a carriage return from a CRLF .env file, a trailing newline) is
    refused by httpx before any request is sent, mid-run; say so when the code location loads.
    The value itself is a secret and is never echoed."""
    token = env.get("CIRCLECI_TOKEN")
    if token and any(character.isspace() for character in token):
        raise ConfigError(
            "CIRCLECI_TOKEN contains whitespace (a stray carriage return or newline, for example "
            "from a .env file with Windows line endings); set it to the token alone. "
            "The value is not shown."
        )


def _float(env: Mapping[str, str], name: str, default: float, *, maximum: float) -> float:
    text = _get(env, name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if not value > 0:
        raise ConfigError(f"{name}={text} must be positive")
    # inf or 1e12 would load and then overflow the first date computed from it, mid-run.
    if not value <= maximum:
        raise ConfigError(f"{name}={text} must be at most {maximum:g}")
    return value


# Cron fields after minute and hour: day of month, month, day of week (0 and 7 are Sunday).
_CRON_DAY_FIELDS = (("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_ITEM = re.compile(r"^(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?$")


def _daily_cron(env: Mapping[str, str], name: str, default: str) -> str:
    """A deadline at a fixed time of day: `M H <day of month> <month> <day of week>`.

    Minute and hour must be single numbers. A deadline that ticked several times a day would
    also tick in the hours before the daily export ran, and the freshness check would report
    yesterday missing every night; Dagster's cron freshness policy also refuses a look-back
    (24 h here) longer than the cron's smallest interval. Checked here, without Dagster, so that
    a typo stops the code location with the variable's name rather than Dagster's bare
    "Invalid cron string." at definition time."""
    text = _get(env, name)
    if text is None:
        return default
    example = f"(a time of day, UTC, such as {default!r}: minute and hour as single numbers)"
    fields = text.split()
    if len(fields) != 5:
        raise ConfigError(f"{name}={text!r} is not a five-field cron string {example}")
    minute, hour, *days = fields
    if not (minute.isdigit() and int(minute) <= 59 and hour.isdigit() and int(hour) <= 23):
        raise ConfigError(f"{name}={text!r} is not a once-a-day deadline {example}")
    for field, (label, low, high) in zip(days, _CRON_DAY_FIELDS, strict=True):
        for item in field.split(","):
            if not _cron_item_ok(item, low, high):
                raise ConfigError(
                    f"{name}={text!r}: {label} {item!r} is not *, a number, a range or a step "
                    f"in {low}..{high}"
                )
    day_of_month, month, _ = days
    if month == "2" and day_of_month in ("30", "31"):
        raise ConfigError(f"{name}={text!r} names a day February does not have")
    return " ".join(fields)


def _cron_item_ok(item: str, low: int, high: int) -> bool:
    """One comma-separated item of a cron field: `*`, `N`, `A-B`, each optionally `/STEP`."""
    match = _CRON_ITEM.match(item)
    if match is None:
        return False
    _, first, last, step = match.groups()
    bounds = [int(n) for n in (first, last) if n is not None]
    if any(not low <= n <= high for n in bounds) or (len(bounds) == 2 and bounds[0] > bounds[1]):
        return False
    return step is None or 1 <= int(step) <= high
