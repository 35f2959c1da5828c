"""The DuckLake warehouse in tests: a lake on a fresh PostgreSQL database of its own."""

from __future__ import annotations

from pathlib import Path

import duckdb

from usage_assets.ingest.lake import LakeLocation, connect_lake
from usage_assets.ingest.warehouse import WAREHOUSE_DUCKDB_CONFIG

# The two warehouse backends the load and insights tests run on.
BACKENDS = ("duckdb", "ducklake")


def lake_at(postgres_url: str, tmp_path: Path) -> LakeLocation:
    """A lake whose catalog is the (fresh) database at `postgres_url`, data under tmp_path."""
    return LakeLocation(catalog_url=postgres_url, data_path=f"{tmp_path / 'lake'}/")


def connect_backend(
    backend: str, tmp_path: Path, postgres_url: str | None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A warehouse connection of the given backend, set up as the pipeline sets it up."""
    if backend == "duckdb":
        return duckdb.connect(str(tmp_path / "w.duckdb"), read_only=read_only)
    assert postgres_url is not None
    return connect_lake(
        lake_at(postgres_url, tmp_path),
        read_only=read_only,
        config={**WAREHOUSE_DUCKDB_CONFIG, "temp_directory": str(tmp_path / "spill")},
    )
