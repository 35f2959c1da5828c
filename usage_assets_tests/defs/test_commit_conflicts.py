"""Insights writes that lose a DuckLake commit conflict run again; other errors fail as before."""

# No `from __future__ import annotations`: Dagster reads the assets' context annotations.
import dagster as dg
import duckdb
import pytest

from usage_assets.defs import commit_conflicts
from usage_assets.ingest.warehouse import MAX_COMMIT_ATTEMPTS

CONFLICT = duckdb.TransactionException(
    'Transaction conflict - attempting to create table "daily_usage" in schema '
    '"circleci_insights" - but this table has been created by another transaction already'
)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit_conflicts, "conflict_backoff", lambda attempt: 0.0)


def test_a_write_losing_conflicts_is_repeated_until_it_commits() -> None:
    calls: list[int] = []
    logged: list[str] = []

    def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise CONFLICT
        return "written"

    assert commit_conflicts.retry_on_commit_conflict(write, logged.append) == "written"
    assert len(calls) == 3 and len(logged) == 2
    assert "attempt 1 of" in logged[0]


def test_a_write_gives_up_after_the_last_attempt_and_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def always_conflicts() -> None:
        calls.append(1)
        raise CONFLICT

    with pytest.raises(duckdb.TransactionException):
        commit_conflicts.retry_on_commit_conflict(always_conflicts, lambda _: None)
    assert len(calls) == MAX_COMMIT_ATTEMPTS

    def broken() -> None:
        calls.append(1)
        raise duckdb.CatalogException("Table with name nope does not exist")

    calls.clear()
    with pytest.raises(duckdb.CatalogException):
        commit_conflicts.retry_on_commit_conflict(broken, lambda _: None)
    assert len(calls) == 1


def test_a_step_losing_a_conflict_is_run_again_by_dagster() -> None:
    attempts: list[int] = []

    @dg.asset
    def refreshed(context: dg.AssetExecutionContext) -> None:
        with commit_conflicts.rerun_step_on_commit_conflict(context):
            attempts.append(context.retry_number)
            if context.retry_number == 0:
                raise CONFLICT

    @dg.asset
    def broken(context: dg.AssetExecutionContext) -> None:
        with commit_conflicts.rerun_step_on_commit_conflict(context):
            attempts.append(context.retry_number)
            raise duckdb.CatalogException("Table with name nope does not exist")

    assert dg.materialize([refreshed]).success
    assert attempts == [0, 1]
    attempts.clear()
    assert not dg.materialize([broken], raise_on_error=False).success
    assert attempts == [0]  # not a conflict: failed, not run again
