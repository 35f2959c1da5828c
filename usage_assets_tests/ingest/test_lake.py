"""Opening the DuckLake: packaged extensions only, signatures checked, secrets never shown."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from usage_assets.ingest import lake as lake_module
from usage_assets.ingest.duckdb_sql import is_ducklake
from usage_assets.ingest.lake import (
    EXTENSION_SAFETY_CONFIG,
    LakeLocation,
    LakeSetupError,
    attach_sql,
    connect_lake,
    extension_path,
)
from usage_assets_tests.lake import lake_at
from usage_assets_tests.postgres import with_database


def test_the_extensions_come_from_the_installed_packages_for_this_duckdb() -> None:
    path = extension_path("duckdb_extension_ducklake", "ducklake")
    assert path.is_file() and f"v{duckdb.__version__}" in path.parts


@pytest.mark.parametrize("where", ["signature", "body"])
def test_an_extension_file_with_a_broken_signature_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    original = extension_path("duckdb_extension_ducklake", "ducklake")
    copy = tmp_path / "ducklake.duckdb_extension"
    shutil.copyfile(original, copy)
    data = bytearray(copy.read_bytes())
    # DuckDB appends a 256-byte signature to the file; break it, or the signed bytes.
    index = len(data) - 100 if where == "signature" else len(data) // 2
    data[index] ^= 0xFF
    copy.write_bytes(bytes(data))

    conn = duckdb.connect(config=EXTENSION_SAFETY_CONFIG)
    with pytest.raises(duckdb.Error, match="signature"):
        conn.execute(f"LOAD '{copy}'")
    conn.close()

    # Through the lake's own loader: refused with the path named, nothing attached.
    real = lake_module.extension_path
    monkeypatch.setattr(
        lake_module,
        "extension_path",
        lambda package, name: copy if name == "ducklake" else real(package, name),
    )
    location = LakeLocation(
        catalog_url="postgresql://nobody@127.0.0.1:1/x", data_path=str(tmp_path)
    )
    with pytest.raises(LakeSetupError, match="refused the ducklake extension"):
        connect_lake(location)


def test_a_missing_extra_or_another_duckdb_version_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(LakeSetupError, match=r"install the `lake` extra"):
        extension_path("duckdb_extension_not_installed", "ducklake")
    monkeypatch.setattr(lake_module.duckdb, "__version__", "9.9.9")
    with pytest.raises(LakeSetupError, match=r"no ducklake extension for DuckDB 9\.9\.9.*v1\.5\.5"):
        extension_path("duckdb_extension_ducklake", "ducklake")


def test_the_lake_is_the_default_catalog_and_the_attach_can_be_read_only(
    postgres_url: str, tmp_path: Path
) -> None:
    lake = lake_at(postgres_url, tmp_path)
    with connect_lake(lake) as conn:
        assert is_ducklake(conn)
        conn.execute("CREATE SCHEMA circleci")
        conn.execute("CREATE TABLE circleci.t AS SELECT 1 AS a")
        settings = dict(
            conn.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN"
                " ('autoinstall_known_extensions', 'autoload_known_extensions',"
                " 'allow_unsigned_extensions')"
            ).fetchall()
        )
        assert set(settings.values()) == {"false"}
    assert "READ_ONLY" in attach_sql(lake, read_only=True)
    with connect_lake(lake, read_only=True) as reader:
        assert reader.execute("SELECT a FROM circleci.t").fetchall() == [(1,)]
        with pytest.raises(duckdb.Error):
            reader.execute("INSERT INTO circleci.t VALUES (2)")
    with duckdb.connect() as file_conn:
        assert not is_ducklake(file_conn)


def test_a_failed_attach_never_shows_the_catalog_password(
    postgres_server: str, tmp_path: Path
) -> None:
    url = with_database(postgres_server, "no_such_database_here")
    parts = url.split("://", 1)
    secret_url = f"{parts[0]}://postgres:Sup3r-secret@{parts[1].split('@', 1)[-1]}"
    with pytest.raises(LakeSetupError) as raised:
        connect_lake(LakeLocation(catalog_url=secret_url, data_path=f"{tmp_path}/"))
    assert "Sup3r-secret" not in str(raised.value)
    assert "no_such_database_here" in str(raised.value)  # the cause is still said
