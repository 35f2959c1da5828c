"""The simulator's rows measured against the shapes of a real export, with tolerances, so a later
change to the generator or its catalogue cannot drift away from them unnoticed.

Every target cites its line in /work/shared/reference/circleci-data-facts.md (the real export
"S" against the simulator: §3.2 column by column, §3.3 aggregate shapes). The window is fixed
(two weeks in November 2025, 3 orgs, the default seed, exported four months later as S was), so
the measured values never depend on today's date.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from usage_assets.circleci.export_format import EXPORT_COLUMN_NAMES, NULL_MARKER
from usage_assets.ingest.cleaning import clean_part
from usage_assets.simulator.parts import write_parts
from usage_assets.simulator.synthetic import SyntheticUsage

COL = {name: i for i, name in enumerate(EXPORT_COLUMN_NAMES)}
ORGS = (
    "b9291e0d-a11e-41fb-8517-c545388b5953",
    "8d05d166-e199-43b1-b588-415eadafacc1",
    "3f2b7c1e-0a4d-4e8f-9b6a-2c5d8e1f4a7b",
)
START = datetime(2025, 11, 10, tzinfo=UTC)
END = datetime(2025, 11, 23, 23, 59, 59, tzinfo=UTC)
AS_OF = datetime(2026, 3, 27, 20, 19, 55, tzinfo=UTC)
N = NULL_MARKER

Row = tuple[str, ...]


def get(row: Row, name: str) -> str:
    return row[COL[name]]


def pct(part: int, whole: int) -> float:
    return 100.0 * part / whole


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    out = list(SyntheticUsage().rows_for_window(ORGS, START, END, as_of=AS_OF))
    assert len(out) > 5000
    return out


@pytest.fixture(scope="module")
def ran(rows: list[Row]) -> list[Row]:
    """Runs of at least 15 s: utilisation is sampled every 15 s, so only these can have it."""
    return [
        r for r in rows if get(r, "JOB_RUN_SECONDS") != N and int(get(r, "JOB_RUN_SECONDS")) >= 15
    ]


def credits(rows: list[Row], column: str = "TOTAL_CREDITS") -> int:
    return sum(int(get(r, column)) for r in rows)


def test_canceled_and_failed_shares_of_rows(rows: list[Row]) -> None:
    statuses = Counter(get(r, "JOB_BUILD_STATUS") for r in rows)
    # §3.2 row 30: success 75.2 %, canceled 14.2 %, failed 5.1 %, blocked 4.0 %, running 1.1 %,
    # queued 0.4 %.
    assert pct(statuses["canceled"], len(rows)) == pytest.approx(14.0, abs=4)
    assert pct(statuses["failed"], len(rows)) == pytest.approx(5.1, abs=2.5)
    assert pct(statuses["success"], len(rows)) == pytest.approx(75.2, abs=6)
    assert pct(statuses["running"], len(rows)) == pytest.approx(1.1, abs=0.8)
    assert pct(statuses["queued"], len(rows)) == pytest.approx(0.4, abs=0.4)


def test_failed_and_canceled_jobs_hold_a_quarter_of_the_credits(rows: list[Row]) -> None:
    # §3.3 "credits on failed + canceled jobs": 24.0 %.
    lost = [r for r in rows if get(r, "JOB_BUILD_STATUS") in ("failed", "canceled")]
    assert pct(credits(lost), credits(rows)) == pytest.approx(24.0, abs=8)


@pytest.mark.parametrize(
    ("executor", "target", "tolerance"),
    # §3.2 rows 36-39 / §3.3 "runs >= 15 s without utilisation": docker 23 %, machine 38 %,
    # remote-docker 75 %, runner 100 %.
    [("docker", 23, 7), ("machine", 38, 10), ("remote-docker", 75, 15), ("runner", 100, 0)],
)
def test_utilisation_is_missing_as_often_as_in_the_real_export(
    ran: list[Row], executor: str, target: float, tolerance: float
) -> None:
    runs = [r for r in ran if get(r, "EXECUTOR") == executor]
    assert len(runs) > 50
    missing = sum(get(r, "MAX_RAM_UTILIZATION_PCT") == N for r in runs)
    assert pct(missing, len(runs)) == pytest.approx(target, abs=tolerance)


def test_utilisation_is_never_present_under_15_seconds(rows: list[Row]) -> None:
    # §3.2 rows 36-39: "Never present under 15 s".
    short = [
        r for r in rows if get(r, "JOB_RUN_SECONDS") != N and int(get(r, "JOB_RUN_SECONDS")) < 15
    ]
    assert short
    assert all(get(r, "MEDIAN_CPU_UTILIZATION_PCT") == N for r in short)


def test_ram_pressure_is_as_rare_as_in_the_real_export(ran: list[Row]) -> None:
    measured = sorted(
        int(get(r, "MAX_RAM_UTILIZATION_PCT"))
        for r in ran
        if get(r, "MAX_RAM_UTILIZATION_PCT") != N
    )
    # §3.2 rows 36-39: max RAM p50 21 / p95 76 / max 97, >= 95 % in 0.7 % of runs.
    assert pct(sum(v >= 95 for v in measured), len(measured)) == pytest.approx(0.7, abs=1)
    assert measured[len(measured) // 2] == pytest.approx(21, abs=8)
    assert measured[int(0.95 * len(measured))] == pytest.approx(76, abs=10)
    assert measured[-1] <= 97


def test_median_cpu_is_pinned_at_100_in_a_sixth_of_runs(ran: list[Row]) -> None:
    medians = [
        int(get(r, "MEDIAN_CPU_UTILIZATION_PCT"))
        for r in ran
        if get(r, "MEDIAN_CPU_UTILIZATION_PCT") != N
    ]
    # §3.3 "median CPU >= 95 %": 17.7 % of runs.
    assert pct(sum(v >= 95 for v in medians), len(medians)) == pytest.approx(17.7, abs=5)


def test_storage_is_on_many_rows_and_a_ninth_of_the_credits(rows: list[Row]) -> None:
    stored = [r for r in rows if get(r, "STORAGE_CREDITS") != "0"]
    # §3.2 row 43: non-zero on 43 % of rows, including runner rows; 11.7 % of all credits.
    assert pct(len(stored), len(rows)) == pytest.approx(43, abs=8)
    assert any(get(r, "EXECUTOR") == "runner" for r in stored)
    assert pct(credits(rows, "STORAGE_CREDITS"), credits(rows)) == pytest.approx(11.7, abs=4)
    assert max(int(get(r, "STORAGE_CREDITS")) for r in stored) > 1000  # max 5,013 in S


def test_network_credits_only_on_self_hosted_runner_rows(rows: list[Row]) -> None:
    # §3.2 row 44 and CircleCI's persist-data docs: network is billed only for traffic to
    # self-hosted runners.
    networked = [r for r in rows if get(r, "NETWORK_CREDITS") != "0"]
    assert networked
    assert {get(r, "EXECUTOR") for r in networked} == {"runner"}


def test_dlc_is_rare_and_on_machine_rows(rows: list[Row]) -> None:
    cached = [r for r in rows if get(r, "DLC_CREDITS") != "0"]
    # §3.2 row 41: 200 on 0.6 % of rows, all on `machine`.
    assert pct(len(cached), len(rows)) == pytest.approx(0.6, abs=0.5)
    assert {(get(r, "EXECUTOR"), get(r, "DLC_CREDITS")) for r in cached} == {("machine", "200")}


def test_the_classes_a_real_export_bills(rows: list[Row]) -> None:
    classes = Counter((get(r, "EXECUTOR"), get(r, "RESOURCE_CLASS")) for r in rows)
    # §3.2 row 31 and §1.3: machine xlarge (the most common machine class in S), 2xlarge,
    # remote-docker xlarge, GPU on machine, the 2026 gen2 classes.
    for key in [
        ("machine", "xlarge"),
        ("machine", "2xlarge"),
        ("remote-docker", "xlarge"),
        ("machine", "gpu.nvidia.medium.multi"),
        ("docker", "medium.gen2"),
        ("machine", "large.gen2"),
    ]:
        assert classes[key] > 0, key
    assert classes[("machine", "xlarge")] > classes[("machine", "large")]
    assert {"1", "3"} <= {
        get(r, "PARALLELISM")
        for r in rows
        if get(r, "RESOURCE_CLASS") == "xlarge" and get(r, "EXECUTOR") == "machine"
    }


def test_stuck_running_rows_look_like_never_ran_rows(rows: list[Row]) -> None:
    # §3.2 row 30a: `running` rows persist for months, with no name, class, queue time or
    # parallelism; `queued` rows keep JOB_NAME, number and parallelism.
    running = [r for r in rows if get(r, "JOB_BUILD_STATUS") == "running"]
    queued = [r for r in rows if get(r, "JOB_BUILD_STATUS") == "queued"]
    assert running and queued
    for row in running:
        assert {
            get(row, c) for c in ("JOB_NAME", "RESOURCE_CLASS", "JOB_RUN_QUEUED_AT", "PARALLELISM")
        } == {N}
    for row in queued:
        assert N not in {get(row, c) for c in ("JOB_NAME", "JOB_RUN_NUMBER", "PARALLELISM")}
        assert get(row, "JOB_RUN_QUEUED_AT") == N


def test_a_part_mixes_orgs_days_and_workflows(tmp_path: Path) -> None:
    usage = SyntheticUsage()
    parts = write_parts(
        usage.rows_for_export(ORGS, START, END, as_of=AS_OF), tmp_path, rows_per_part=500
    )
    assert len(parts) > 10
    expected = sorted(
        r[COL["JOB_ID"]] for r in usage.rows_for_window(ORGS, START, END, as_of=AS_OF)
    )
    seen: list[str] = []
    for path in parts:
        frame = clean_part(path, export_job_id="realism")
        seen.extend(frame["job_id"].to_list())
        # §3.3 "how parts are made": rows of all orgs, days and workflows mixed in one part (the
        # real part S holds all 3 orgs and all 9 days).
        assert frame["organization_id"].n_unique() == len(ORGS)
        assert frame["job_run_date"].n_unique() >= 10
        by_workflow = frame.group_by("workflow_id").len()
        assert by_workflow.height > 100
    assert sorted(seen) == expected  # the same rows, each once: only the order changed


def test_the_export_order_is_deterministic() -> None:
    usage = SyntheticUsage()
    first = list(usage.rows_for_export(ORGS[:2], START, START.replace(day=12), as_of=AS_OF))
    again = list(
        SyntheticUsage().rows_for_export(ORGS[:2], START, START.replace(day=12), as_of=AS_OF)
    )
    assert first == again
    assert first != list(usage.rows_for_window(ORGS[:2], START, START.replace(day=12), as_of=AS_OF))
