"""Environment configuration: defaults, and errors that name the variable."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from usage_assets.config import (
    DEFAULT_REFERENCE_DIR,
    ConfigError,
    default_start_date,
    load_config,
)
from usage_assets_tests.helpers import small_disk

TODAY = date(2026, 11, 24)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config({}, today=TODAY)
    assert config.api_url == "https://circleci.com/api/v2"
    assert config.data_dir == tmp_path / "data"
    assert config.duckdb_path == str(tmp_path / "data" / "usage.duckdb")
    assert config.ledger_path == tmp_path / "data" / "post_quota.sqlite"
    assert (config.post_quota, config.post_quota_window_hours) == (10, 24.0)
    assert config.start_date == date(2025, 12, 1)
    assert config.shared_org_ids == ()
    assert config.reference_dir == DEFAULT_REFERENCE_DIR
    assert config.report_path == tmp_path / "data" / "reports" / "usage_report.html"
    assert config.freshness_deadline_cron == "0 12 * * *"


def test_insights_paths_are_read(tmp_path: Path) -> None:
    config = load_config(
        {"USAGE_REFERENCE_DIR": str(tmp_path), "USAGE_REPORT_PATH": str(tmp_path / "r.html")},
        today=TODAY,
    )
    assert (config.reference_dir, config.report_path) == (tmp_path, tmp_path / "r.html")


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 24), date(2025, 12, 1)),
        (date(2026, 1, 15), date(2025, 2, 1)),
        (date(2026, 12, 1), date(2025, 12, 1)),
    ],
)
def test_default_start_date_stays_inside_the_lookback(today: date, expected: date) -> None:
    start = default_start_date(today)
    assert start == expected
    assert (today - start).days <= 366


def test_values_are_read(tmp_path: Path) -> None:
    config = load_config(
        {
            "CIRCLECI_API_URL": "http://127.0.0.1:8787/api/v2/",
            "CIRCLECI_SHARED_ORG_IDS": " 6f0b5c1e-3c8d-4b8e-9a53-2f1e7d9c4a10 , ",
            "USAGE_DATA_DIR": str(tmp_path),
            "USAGE_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            "USAGE_START_DATE": "2026-01-05",
            "USAGE_POST_QUOTA": "4",
            "USAGE_POST_QUOTA_WINDOW_HOURS": "1.5",
        },
        today=TODAY,
    )
    assert config.api_url == "http://127.0.0.1:8787/api/v2"
    assert config.shared_org_ids == ("6f0b5c1e-3c8d-4b8e-9a53-2f1e7d9c4a10",)
    assert config.raw_dir == tmp_path / "raw"
    assert config.duckdb_path == str(tmp_path / "w.duckdb")
    assert config.start_date == date(2026, 1, 5)
    assert (config.post_quota, config.post_quota_window_hours) == (4, 1.5)


def test_motherduck_database_is_kept_as_is() -> None:
    assert (
        load_config({"USAGE_DUCKDB_PATH": "md:ci_usage"}, today=TODAY).duckdb_path == "md:ci_usage"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "CIRCLECI_API_URL",
            "circleci.com",
            "CIRCLECI_API_URL='circleci.com' is not an http(s) base URL",
        ),
        ("CIRCLECI_SHARED_ORG_IDS", "gh/acme", "CIRCLECI_SHARED_ORG_IDS holds 'gh/acme'"),
        ("USAGE_START_DATE", "last year", "USAGE_START_DATE='last year' is not a date"),
        ("USAGE_START_DATE", "2027-01-01", "USAGE_START_DATE=2027-01-01 must be before today"),
        ("USAGE_POST_QUOTA", "ten", "USAGE_POST_QUOTA='ten' is not a whole number"),
        ("USAGE_POST_QUOTA", "0", "USAGE_POST_QUOTA=0 must be at least 1"),
        (
            "USAGE_POST_QUOTA_WINDOW_HOURS",
            "-1",
            "USAGE_POST_QUOTA_WINDOW_HOURS=-1 must be positive",
        ),
        (
            "USAGE_POST_QUOTA_WINDOW_HOURS",
            "inf",
            "USAGE_POST_QUOTA_WINDOW_HOURS=inf must be at most",
        ),
        (
            "USAGE_POST_QUOTA_WINDOW_HOURS",
            "1e12",
            "USAGE_POST_QUOTA_WINDOW_HOURS=1e12 must be at most",
        ),
        (
            "USAGE_POST_QUOTA_WINDOW_HOURS",
            "nan",
            "USAGE_POST_QUOTA_WINDOW_HOURS=nan must be positive",
        ),
        ("CIRCLECI_TOKEN", "CCIPAT_secret-value\r", "CIRCLECI_TOKEN contains whitespace"),
        ("CIRCLECI_TOKEN", "CCIPAT_secret value", "CIRCLECI_TOKEN contains whitespace"),
        (
            "USAGE_DAILY_SCHEDULE_HOUR",
            "25",
            "USAGE_DAILY_SCHEDULE_HOUR=25 must be between 0 and 23",
        ),
        (
            "USAGE_FRESHNESS_DEADLINE_CRON",
            "every day at noon",
            "USAGE_FRESHNESS_DEADLINE_CRON='every day at noon' is not a five-field cron string",
        ),
        (
            "USAGE_FRESHNESS_DEADLINE_CRON",
            "0 25 * * *",
            "USAGE_FRESHNESS_DEADLINE_CRON='0 25 * * *' is not a once-a-day deadline",
        ),
        (
            "USAGE_FRESHNESS_DEADLINE_CRON",
            "*/30 * * * *",
            "USAGE_FRESHNESS_DEADLINE_CRON='*/30 * * * *' is not a once-a-day deadline",
        ),
        (
            "USAGE_FRESHNESS_DEADLINE_CRON",
            "0 12 * * 1-9",
            "USAGE_FRESHNESS_DEADLINE_CRON='0 12 * * 1-9': day of week '1-9' is not",
        ),
        (
            "USAGE_FRESHNESS_DEADLINE_CRON",
            "0 12 30 2 *",
            "USAGE_FRESHNESS_DEADLINE_CRON='0 12 30 2 *' names a day February does not have",
        ),
        (
            "USAGE_REFERENCE_DIR",
            "/nonexistent/reference",
            "USAGE_REFERENCE_DIR='/nonexistent/reference' is not a directory",
        ),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({name: value}, today=TODAY)
    assert message in str(caught.value)
    if name == "CIRCLECI_TOKEN":
        assert "secret" not in str(caught.value)


def test_a_data_dir_that_is_a_file_fails_at_load_naming_the_path(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("")
    with pytest.raises(ConfigError, match=f"USAGE_DATA_DIR={not_a_dir} is a file"):
        load_config({"USAGE_DATA_DIR": str(not_a_dir)}, today=TODAY)


@pytest.mark.parametrize("inside", [False, True], ids=["the-folder", "a-folder-to-create-in-it"])
def test_a_data_dir_on_a_read_only_file_system_stops_the_code_location_loading(
    tmp_path: Path, inside: bool
) -> None:
    # A read-only mount, not permission bits: the runs here are root, whom those do not stop.
    with small_disk(tmp_path / "ro", size="1m", read_only=True) as read_only:
        data_dir = read_only / "data" if inside else read_only
        with pytest.raises(ConfigError, match=f"USAGE_DATA_DIR={data_dir} cannot be written"):
            load_config({"USAGE_DATA_DIR": str(data_dir)}, today=TODAY)
    assert load_config({"USAGE_DATA_DIR": str(tmp_path / "rw")}, today=TODAY).data_dir


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30 9 * * *", "30 9 * * *"), (" 0  14 * * 1-5 ", "0 14 * * 1-5"), ("0 8 1,15 */2 0,7", None)],
)
def test_a_daily_deadline_is_accepted(value: str, expected: str | None) -> None:
    config = load_config({"USAGE_FRESHNESS_DEADLINE_CRON": value}, today=TODAY)
    assert config.freshness_deadline_cron == (expected or value)


def test_the_lake_settings_default_to_the_duckdb_file(tmp_path: Path) -> None:
    config = load_config({"USAGE_DATA_DIR": str(tmp_path)}, today=TODAY)
    assert config.lake_catalog_url is None and config.warehouse_writers == 1


def test_the_lake_settings_are_read(tmp_path: Path) -> None:
    url = "postgresql://loader:s3cret@db.internal:5432/lake"
    env = {"USAGE_DATA_DIR": str(tmp_path), "USAGE_LAKE_CATALOG_URL": url}
    config = load_config({**env, "USAGE_WAREHOUSE_WRITERS": "2"}, today=TODAY)
    assert config.lake_catalog_url == url
    assert config.lake_data_path == f"{tmp_path}/lake/"
    assert config.warehouse_writers == 2
    shared = load_config({**env, "USAGE_LAKE_DATA_PATH": str(tmp_path / "shared")}, today=TODAY)
    assert shared.lake_data_path == f"{tmp_path / 'shared'}/"
    s3 = load_config({**env, "USAGE_LAKE_DATA_PATH": "s3://bucket/usage"}, today=TODAY)
    assert s3.lake_data_path == "s3://bucket/usage/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"USAGE_WAREHOUSE_WRITERS": "2"}, "USAGE_WAREHOUSE_WRITERS=2 needs a DuckLake"),
        ({"USAGE_WAREHOUSE_WRITERS": "0"}, "USAGE_WAREHOUSE_WRITERS=0 must be"),
        ({"USAGE_LAKE_CATALOG_URL": "mysql://u:hunter2@h/db"}, "USAGE_LAKE_CATALOG_URL must be"),
        ({"USAGE_LAKE_CATALOG_URL": "postgresql://u:hunter2@h:5432"}, "names no database"),
        ({"USAGE_LAKE_DATA_PATH": "/x"}, "USAGE_LAKE_CATALOG_URL is not"),
        (
            {"USAGE_LAKE_CATALOG_URL": "postgresql://h/db", "USAGE_LAKE_DATA_PATH": "gs://b/p"},
            "USAGE_LAKE_DATA_PATH='gs://b/p' must be",
        ),
    ],
)
def test_bad_lake_settings_name_the_variable_and_never_show_a_password(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(env, today=TODAY)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)
