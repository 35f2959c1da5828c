"""deploy/dagster-postgres.yaml works as shipped: runs, events and pool slots land in PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg2
import pytest
import yaml

from usage_assets.defs.constants import WAREHOUSE_POOL

REPO = Path(__file__).resolve().parents[2]
INSTANCE_FILE = REPO / "deploy" / "dagster-postgres.yaml"


def test_the_postgres_instance_file_keeps_dagster_yaml_settings() -> None:
    """Pools, run monitoring, retries: one set of instance settings, whatever the storage."""
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    shipped = yaml.safe_load(INSTANCE_FILE.read_text())
    assert shipped.pop("storage")["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert shipped == local


@pytest.fixture
def postgres_instance(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dg.DagsterInstance:
    """The shipped file as $DAGSTER_HOME/dagster.yaml, its env vars pointing at the test database."""
    url = urlsplit(postgres_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.hostname or "")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "unused-with-trust-auth")
    monkeypatch.setenv("DAGSTER_PG_DB", url.path.lstrip("/"))
    shutil.copy(INSTANCE_FILE, tmp_path / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(tmp_path))


@dg.asset(pool=WAREHOUSE_POOL)
def cheap_asset() -> int:
    return 1


def test_a_materialization_is_stored_in_postgres(
    postgres_instance: dg.DagsterInstance, postgres_url: str
) -> None:
    with postgres_instance as instance:
        result = dg.materialize([cheap_asset], instance=instance)
        assert result.success
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs")
        assert cur.fetchall() == [(result.run_id, "SUCCESS")]
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s"
            " AND dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
            (result.run_id, dg.AssetKey("cheap_asset").to_string()),
        )
        assert cur.fetchone() == (1,)
        # The pool's limit from the file (default_limit: 1), kept in PostgreSQL for every process.
        cur.execute("SELECT count(*) FROM concurrency_slots WHERE concurrency_key = %s", (WAREHOUSE_POOL,))
        assert cur.fetchone() == (1,)
