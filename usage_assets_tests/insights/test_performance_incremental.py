"""Incremental performance roll-ups: after each kind of change, the tables equal a full rebuild,
and only the periods whose inputs changed were recomputed.

The DuckDB file everywhere (the insights conftest's `backend`); the walk through every kind of
change also on a DuckLake. History is loaded as the pipeline loads it (`load_window`, then `workflow_runs.refresh` for the
window): Jul 1 .. Oct 14 2026, so the periods are 2026-07 .. 2026-10 and last_30_days (whose
predecessor, previous_30_days, is never published). Dates are fixed: nothing depends on today.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES
from usage_assets.ingest.warehouse import load_window
from usage_assets.insights import performance, rollup_state, workflow_runs
from usage_assets.insights.common import loaded_range
from usage_assets.insights.reference_data import DefaultBranch
from usage_assets.simulator.synthetic import SyntheticUsage
from usage_assets_tests.insights.job_rows import rounded
from usage_assets_tests.lake import BACKENDS

ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"
USAGE = SyntheticUsage(rows_per_day=3)
FIRST, LAST = date(2026, 7, 1), date(2026, 10, 14)
OLDER = datetime(2026, 10, 15, tzinfo=UTC)  # when the history's exports were created
NEWER = OLDER + timedelta(days=30)
RUN_DATE = EXPORT_COLUMN_NAMES.index("JOB_RUN_DATE")
STATUS = EXPORT_COLUMN_NAMES.index("JOB_BUILD_STATUS")
JOB_ID = EXPORT_COLUMN_NAMES.index("JOB_ID")
TABLES = (performance.WORKFLOW_NAME, performance.JOB_NAME)
OLD_DAY = date(2026, 7, 6)  # a day with runs (the synthetic org is quiet on many days)
ALL = ("2026-07", "2026-08", "2026-09", "2026-10", "last_30_days")


def rows(first: date, last: date) -> list[list[str]]:
    out: list[list[str]] = []
    day = first
    while day <= last:
        out.extend(list(row) for row in USAGE.rows_for_day(ORG, day))
        day += timedelta(days=1)
    return out


def load(
    conn: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    part_rows: Sequence[Sequence[str]],
    first: date,
    last: date,
    run_id: str,
    created: datetime = OLDER,
) -> None:
    """One export loaded as `download_and_load_usage` loads it: job_runs, then workflow_runs."""
    path = tmp_path / f"{run_id}.csv.gz"
    lines = [",".join(EXPORT_COLUMN_NAMES), *(",".join(row) for row in part_rows)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    load_window(
        conn,
        [(f"export-{run_id}", path)],
        window_start=first,
        window_end=last,
        run_id=run_id,
        export_created_at=created,
    )
    workflow_runs.refresh(conn, first, last, run_id)


def refresh(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    full_rebuild: bool = False,
    branches: Sequence[DefaultBranch] = (),
) -> dict[str, performance.Refreshed]:
    return performance.refresh(
        conn,
        loaded_range(conn),
        run_id,
        default_branches=branches,
        full_rebuild=full_rebuild,
    )


def contents(conn: duckdb.DuckDBPyConnection, name: str) -> list[tuple[object, ...]]:
    """Every row and column but when and by which run it was computed."""
    columns = [
        c for c in performance._TABLES[name].columns if c not in ("refreshed_at", "insights_run_id")
    ]
    return sorted(
        rounded(
            conn.execute(f"SELECT {', '.join(columns)} FROM circleci_insights.{name}").fetchall()
        ),
        key=repr,
    )


def assert_incremental(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    expected: Sequence[str],
    branches: Sequence[DefaultBranch] = (),
) -> dict[str, tuple[tuple[date, date], ...]]:
    """An incremental refresh recomputes exactly `expected` (in both tables), and its tables equal
    a full rebuild's; returns the days each table's refresh read."""
    incremental = refresh(conn, run_id, branches=branches)
    assert {name: r.recomputed for name, r in incremental.items()} == {
        name: tuple(expected) for name in TABLES
    }
    assert all(not r.full_rebuild and r.kept == tuple(p for p in ALL if p not in expected)
               for r in incremental.values())  # fmt: skip
    after = {name: contents(conn, name) for name in TABLES}
    assert all(after.values())  # something to compare
    refresh(conn, f"{run_id}-full", full_rebuild=True, branches=branches)
    assert {name: contents(conn, name) for name in TABLES} == after
    return {name: r.days_read for name, r in incremental.items()}


@pytest.fixture
def history(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    # Two windows, the first ending on Sep 1 (a day with runs: one of them moves in (c)).
    load(conn, tmp_path, rows(FIRST, date(2026, 9, 1)), FIRST, date(2026, 9, 1), "r1")
    load(conn, tmp_path, rows(date(2026, 9, 2), LAST), date(2026, 9, 2), LAST, "r2")
    first = refresh(conn, "i1")
    assert all(r.full_rebuild and r.reason == "no state" and r.recomputed == ALL
               for r in first.values())  # fmt: skip
    return conn


def test_nothing_changed_nothing_recomputed(history: duckdb.DuckDBPyConnection) -> None:
    before = {name: contents(history, name) for name in TABLES}
    again = refresh(history, "i2")
    assert all(r.recomputed == () and r.kept == ALL for r in again.values())
    assert {name: contents(history, name) for name in TABLES} == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_change_recomputes_only_its_periods_and_equals_a_full_rebuild(
    history: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The changes in turn, on one history (building it is most of the test's time)."""
    conn = history
    # (a) A new day: its month and the last 30 days (whose bounds moved); July .. September kept.
    day = LAST + timedelta(days=1)
    assert rows(day, day)
    load(conn, tmp_path, rows(day, day), day, day, "r3")
    read = assert_incremental(conn, "i2", ["2026-10", "last_30_days"])
    # October with September (its trends' baseline), Sep 16 .. Oct 15 with Aug 17 .. Sep 15: the
    # new day's refresh reads from Aug 17, not from Jul 1.
    assert read == {name: ((date(2026, 8, 17), day),) for name in TABLES}

    # (b) A late re-export of an old day: Jul 6 exported again, newer, one job now failed. July
    # changes, and August, whose trends compare with July; the rolling periods (Aug 17 .. Oct 15)
    # do not read July.
    again = rows(OLD_DAY, OLD_DAY)
    again[0][STATUS] = "failed"
    load(conn, tmp_path, again, OLD_DAY, OLD_DAY, "r4", created=NEWER)
    assert_incremental(conn, "i3", ["2026-07", "2026-08"])

    # (c) A job run moving between windows: a still newer export of Sep 2 .. Sep 8 carries a job
    # run that the first window had on Sep 1 (a day earlier: the drift a load looks for, see
    # `job_runs_rules.USAGE_DATE_DRIFT`); the load deletes it from Sep 1, outside its window.
    # September changes, October (its trends), and the last 30 days (whose predecessor, Aug 17 ..
    # Sep 15, holds both days).
    moved = rows(date(2026, 9, 1), date(2026, 9, 1))[0]
    moved[RUN_DATE] = date(2026, 9, 2).isoformat()
    first, last = date(2026, 9, 2), date(2026, 9, 8)
    later = NEWER + timedelta(days=1)
    load(conn, tmp_path, [*rows(first, last), moved], first, last, "r5", created=later)
    assert_incremental(conn, "i4", ["2026-09", "2026-10", "last_30_days"])
    assert conn.execute(
        "SELECT usage_date FROM circleci.job_runs WHERE job_id = ?", [moved[JOB_ID]]
    ).fetchall() == [(date(2026, 9, 2),)]

    # (d) A default-branch override: every period.
    (project,) = conn.execute(
        "SELECT any_value(project_name) FROM circleci.job_runs GROUP BY project_id"
        " ORDER BY count(*) DESC LIMIT 1"
    ).fetchone() or ("",)
    assert_incremental(conn, "i5", ALL, branches=[DefaultBranch(project, "release")])


def test_a_corrupt_state_means_a_full_rebuild(history: duckdb.DuckDBPyConnection) -> None:
    before = {name: contents(history, name) for name in TABLES}
    history.execute(
        "DELETE FROM circleci_insights.job_performance WHERE period = '2026-08'"
        " AND branch_scope = 'default'"
    )
    again = refresh(history, "i2")
    job, workflow = again[performance.JOB_NAME], again[performance.WORKFLOW_NAME]
    assert (job.full_rebuild, job.reason, job.recomputed) == (
        True,
        "state disagrees with the table for period 2026-08",
        ALL,
    )
    assert (workflow.full_rebuild, workflow.recomputed) == (False, ())
    assert {name: contents(history, name) for name in TABLES} == before


# The pure decision.
B = rollup_state.Bounds


@pytest.mark.parametrize(
    ("stored", "current", "full", "expected"),
    [
        # No state: everything, as a full rebuild.
        (None, {"a": "1", "b": "2"}, False, (("a", "b"), (), (), True)),
        # Unchanged, changed, new, gone.
        (
            {"a": "1", "b": "2", "old": "9"},
            {"a": "1", "b": "3", "c": "4"},
            False,
            (("b", "c"), ("a",), ("old",), False),
        ),
        ({"a": "1"}, {"a": "1"}, False, ((), ("a",), (), False)),
        # Requested: everything, whatever the state says; gone periods still dropped.
        ({"a": "1", "old": "9"}, {"a": "1"}, True, (("a",), (), ("old",), True)),
        # Nothing loaded any more: every stored period goes.
        ({"a": "1"}, {}, False, ((), (), ("a",), False)),
    ],
)
def test_plan(
    stored: dict[str, str] | None,
    current: dict[str, str],
    full: bool,
    expected: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool],
) -> None:
    result = rollup_state.plan(stored, current, full_rebuild=full)
    assert (result.recompute, result.keep, result.drop, result.full_rebuild) == expected


AUG = B("2026-08", "month", date(2026, 8, 1), date(2026, 8, 31))
JUL = B("2026-07", "month", date(2026, 7, 1), date(2026, 7, 31))
PRINTS = {OLD_DAY: "5:1", date(2026, 8, 10): "5:2"}


@pytest.mark.parametrize(
    ("period", "previous", "prints", "changes"),
    [
        (AUG, JUL, PRINTS, False),
        (AUG, JUL, {**PRINTS, date(2026, 9, 1): "1:1"}, False),  # a day of neither
        (AUG, JUL, {**PRINTS, OLD_DAY: "4:1"}, True),  # the previous period's day
        (AUG, JUL, {**PRINTS, date(2026, 8, 31): "1:1"}, True),  # a day gains rows
        (AUG, JUL, {d: p for d, p in PRINTS.items() if d.month == 7}, True),  # a day loses all
        (AUG, B("2026-07", "month", date(2026, 7, 2), date(2026, 7, 31)), PRINTS, True),  # bounds
        (AUG, None, PRINTS, True),
    ],
)
def test_a_signature_changes_with_what_the_period_reads(
    period: rollup_state.Bounds,
    previous: rollup_state.Bounds | None,
    prints: dict[date, str],
    changes: bool,
) -> None:
    base = rollup_state.period_signature("code", "branches", AUG, JUL, PRINTS)
    assert (
        rollup_state.period_signature("code", "branches", period, previous, prints) != base
    ) is changes
    assert rollup_state.period_signature("code2", "branches", AUG, JUL, PRINTS) != base
    assert rollup_state.period_signature("code", "branches2", AUG, JUL, PRINTS) != base


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        ([], []),
        ([AUG, JUL], [(date(2026, 7, 1), date(2026, 8, 31))]),  # adjacent: one range
        (
            [AUG, B("x", "month", date(2026, 10, 1), date(2026, 10, 5))],
            [(date(2026, 8, 1), date(2026, 8, 31)), (date(2026, 10, 1), date(2026, 10, 5))],
        ),
        (
            [AUG, B("x", "rolling", date(2026, 8, 20), date(2026, 9, 3))],
            [(date(2026, 8, 1), date(2026, 9, 3))],
        ),
    ],
)
def test_merged_ranges(
    periods: list[rollup_state.Bounds], expected: list[tuple[date, date]]
) -> None:
    assert rollup_state.merged_ranges(periods) == expected
