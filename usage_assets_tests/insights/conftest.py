"""A fresh warehouse per test: a DuckDB file, or (for the modules that ask, see `backend`) also a
DuckLake on a fresh PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from usage_assets_tests.insights.job_rows import connect
from usage_assets_tests.lake import connect_backend


@pytest.fixture
def backend() -> str:
    """The warehouse the insights tests run on; a module parametrizes it over BACKENDS to run on
    a DuckLake too. (USAGE_TEST_INSIGHTS_BACKEND=ducklake runs every insights test on the lake.)"""
    return os.environ.get("USAGE_TEST_INSIGHTS_BACKEND", "duckdb")


@pytest.fixture
def conn(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    if backend == "duckdb":
        connection = connect(tmp_path)
    else:
        connection = connect_backend(backend, tmp_path, request.getfixturevalue("postgres_url"))
    try:
        yield connection
    finally:
        connection.close()
