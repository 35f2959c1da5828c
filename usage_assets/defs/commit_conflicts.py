"""What the insights steps do when they lose a DuckLake commit conflict: run again.

On a DuckLake several loads write at once (USAGE_WAREHOUSE_WRITERS > 1), and their insights steps
refresh the same tables: DuckLake commits optimistically and fails the later of two transactions
that delete from (or create) the same table. Every insights write is a replace (the run's days,
or the whole roll-up), so running it again after the other commit is correct. On the DuckDB file
nothing conflicts (one writer at a time) and none of this triggers. Found by the production-stack
test, whose two loads' `insights_daily` steps met on a new lake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import dagster as dg

from usage_assets.ingest.lake import is_commit_conflict
from usage_assets.ingest.warehouse import MAX_COMMIT_ATTEMPTS, conflict_backoff

T = TypeVar("T")


@contextmanager
def rerun_step_on_commit_conflict(context: dg.AssetExecutionContext) -> Iterator[None]:
    """A commit conflict inside the block asks Dagster to run the step again (after a jittered
    backoff, at most MAX_COMMIT_ATTEMPTS attempts in all); any other error fails as before. For
    steps that yield results as they go, which cannot simply loop."""
    try:
        yield
    except Exception as exc:
        if not is_commit_conflict(exc):
            raise
        attempt = context.retry_number + 1
        delay = conflict_backoff(attempt)
        context.log.warning(
            f"Lost a DuckLake commit conflict to a concurrent run (attempt {attempt} of "
            f"{MAX_COMMIT_ATTEMPTS}); running the step again in {delay:.1f} s: {exc}"
        )
        raise dg.RetryRequested(max_retries=MAX_COMMIT_ATTEMPTS - 1, seconds_to_wait=delay) from exc


def retry_on_commit_conflict(action: Callable[[], T], log: Callable[[str], None]) -> T:
    """`action()`, run again after a jittered backoff each time it loses a commit conflict (at
    most MAX_COMMIT_ATTEMPTS attempts); for a write that can be repeated in place."""
    for attempt in range(1, MAX_COMMIT_ATTEMPTS):
        try:
            return action()
        except Exception as exc:
            if not is_commit_conflict(exc):
                raise
            delay = conflict_backoff(attempt)
            log(
                f"Lost a DuckLake commit conflict to a concurrent run (attempt {attempt} of "
                f"{MAX_COMMIT_ATTEMPTS}); writing again in {delay:.1f} s: {exc}"
            )
            time.sleep(delay)
    return action()
