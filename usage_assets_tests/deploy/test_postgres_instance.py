"""deploy/dagster-postgres.yaml works as shipped: runs, events and pool slots land in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg2
import yaml

from usage_assets.defs.constants import WAREHOUSE_POOL
from usage_assets_tests.postgres import INSTANCE_FILE

REPO = Path(__file__).resolve().parents[2]


def test_the_postgres_instance_file_keeps_dagster_yaml_settings() -> None:
    """Pools, run monitoring, retries: one set of instance settings, whatever the storage."""
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    shipped = yaml.safe_load(INSTANCE_FILE.read_text())
    assert shipped.pop("storage")["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert shipped == local


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
        cur.execute(
            "SELECT count(*) FROM concurrency_slots WHERE concurrency_key = %s", (WAREHOUSE_POOL,)
        )
        assert cur.fetchone() == (1,)
