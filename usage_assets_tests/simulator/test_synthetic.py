"""Behaviour of the synthetic usage generator: determinism, volume, encoding and invariants."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from usage_assets.circleci.export_format import (
    COLUMN_KINDS,
    CREDIT_COMPONENT_COLUMNS,
    EXPORT_COLUMN_NAMES,
    NULL_MARKER,
    TOTAL_CREDITS_COLUMN,
    ColumnKind,
)
from usage_assets.simulator.synthetic import SyntheticUsage

COL = {name: i for i, name in enumerate(EXPORT_COLUMN_NAMES)}
ORGS = (
    "8d05d166-e199-43b1-b588-415eadafacc1",
    "3f2b7c1e-0a4d-4e8f-9b6a-2c5d8e1f4a7b",
    "c0ffee00-1234-4abc-8def-0123456789ab",
)
WEEK = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]  # Monday .. Sunday
NEVER_RAN_NULLS = (
    "JOB_NAME",
    "JOB_RUN_NUMBER",
    "RESOURCE_CLASS",
    "OPERATING_SYSTEM",
    "EXECUTOR",
    "PARALLELISM",
    "JOB_RUN_SECONDS",
    "MEDIAN_CPU_UTILIZATION_PCT",
    "MAX_CPU_UTILIZATION_PCT",
    "MEDIAN_RAM_UTILIZATION_PCT",
    "MAX_RAM_UTILIZATION_PCT",
    "JOB_RUN_QUEUED_AT",
    "JOB_RUN_STOPPED_AT",
)
UTIL = (
    "MEDIAN_CPU_UTILIZATION_PCT",
    "MAX_CPU_UTILIZATION_PCT",
    "MEDIAN_RAM_UTILIZATION_PCT",
    "MAX_RAM_UTILIZATION_PCT",
)
CREDITS_PER_MINUTE = {
    ("small", "docker"): 5,
    ("medium", "docker"): 10,
    ("medium+", "docker"): 15,
    ("large", "docker"): 20,
    ("xlarge", "docker"): 40,
    ("2xlarge", "docker"): 80,
    ("medium", "machine"): 10,
    ("large", "machine"): 20,
    ("xlarge", "machine"): 100,
    ("2xlarge", "machine"): 200,
    ("large.gen2", "machine"): 36,
    ("medium.gen2", "docker"): 12,
    ("gpu.nvidia.medium.multi", "machine"): 240,
    ("xlarge", "remote-docker"): 100,
    ("m4pro.medium", "macos"): 200,
    ("arm.medium", "machine"): 10,
    ("medium", "remote-docker"): 10,
    ("large", "remote-docker"): 20,
    ("windows.medium", "machine"): 40,
    ("macos.m1.medium.gen1", "macos"): 150,
}
FORMATS = {
    ColumnKind.UUID: re.compile(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    ),
    ColumnKind.DATE: re.compile(r"\d{4}-\d{2}-\d{2}"),
    ColumnKind.TIMESTAMP: re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}"),
    ColumnKind.BOOLEAN: re.compile(r"true|false"),
    ColumnKind.INTEGER: re.compile(r"\d+"),
    ColumnKind.NUMBER: re.compile(r"\d+"),
    ColumnKind.TEXT: re.compile(r"[^,\"\r\n]+"),
}
WHOLE_SECOND_COLUMNS = (
    "WORKFLOW_FIRST_JOB_QUEUED_AT",
    "WORKFLOW_FIRST_JOB_STARTED_AT",
    "WORKFLOW_STOPPED_AT",
    "JOB_RUN_QUEUED_AT",
    "JOB_RUN_STARTED_AT",
    "JOB_RUN_STOPPED_AT",
)


def ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def get(row: tuple[str, ...], name: str) -> str:
    return row[COL[name]]


def is_null(value: str) -> bool:
    return value == NULL_MARKER


@pytest.fixture(scope="module")
def usage() -> SyntheticUsage:
    return SyntheticUsage()


@pytest.fixture(scope="module")
def sample(usage: SyntheticUsage) -> list[tuple[str, ...]]:
    """A few thousand fully elapsed rows: 3 orgs x 2 weeks."""
    days = [date(2025, 3, 3) + timedelta(days=i) for i in range(14)]
    return [row for org in ORGS for day in days for row in usage.rows_for_day(org, day)]


# ---------------------------------------------------------------- determinism


def test_same_arguments_give_identical_rows(usage: SyntheticUsage) -> None:
    day = date(2025, 3, 4)
    first = list(usage.rows_for_day(ORGS[0], day))
    assert first
    assert list(usage.rows_for_day(ORGS[0], day)) == first
    assert list(SyntheticUsage().rows_for_day(ORGS[0], day)) == first


def test_rows_do_not_depend_on_the_process_hash_seed(usage: SyntheticUsage) -> None:
    day = date(2025, 3, 4)

    def digest_here() -> str:
        h = hashlib.sha256()
        for row in usage.rows_for_day(ORGS[1], day):
            h.update(",".join(row).encode() + b"\n")
        return h.hexdigest()

    code = (
        "import hashlib, datetime\n"
        "from usage_assets.simulator.synthetic import SyntheticUsage\n"
        "h = hashlib.sha256()\n"
        f"for row in SyntheticUsage().rows_for_day({ORGS[1]!r}, datetime.date(2025, 3, 4)):\n"
        "    h.update(','.join(row).encode() + b'\\n')\n"
        "print(h.hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert out.stdout.strip() == digest_here()


@pytest.mark.parametrize(
    ("other", "org"),
    [(SyntheticUsage(seed=1), ORGS[0]), (SyntheticUsage(), ORGS[1])],
    ids=["other-seed", "other-org"],
)
def test_different_seed_or_org_gives_different_rows(
    usage: SyntheticUsage, other: SyntheticUsage, org: str
) -> None:
    day = date(2025, 3, 4)
    base = list(usage.rows_for_day(ORGS[0], day))
    changed = list(other.rows_for_day(org, day))
    assert changed != base
    assert {get(r, "JOB_ID") for r in base}.isdisjoint(get(r, "JOB_ID") for r in changed)


def test_job_ids_are_unique_across_orgs_and_days(usage: SyntheticUsage) -> None:
    ids = [
        get(row, "JOB_ID")
        for org in ORGS[:2]
        for day in WEEK
        for row in usage.rows_for_day(org, day)
    ]
    assert len(ids) > 1000
    assert len(ids) == len(set(ids))


def test_org_name_is_stable_and_used_in_rows(usage: SyntheticUsage) -> None:
    name = usage.org_name(ORGS[0])
    assert name == SyntheticUsage().org_name(ORGS[0])
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name)
    rows = list(usage.rows_for_day(ORGS[0], WEEK[0]))
    assert {get(r, "ORGANIZATION_NAME") for r in rows} == {name}
    assert all(get(r, "VCS_URL").startswith(f"https://github.com/{name}/") for r in rows)


# ---------------------------------------------------------------- volume


@pytest.mark.parametrize("day", WEEK, ids=[d.strftime("%a") for d in WEEK])
@pytest.mark.parametrize("org", ORGS[:2])
def test_day_row_count_matches_rows_for_day(usage: SyntheticUsage, org: str, day: date) -> None:
    assert usage.day_row_count(org, day) == len(list(usage.rows_for_day(org, day)))


def test_weekends_are_quieter_than_weekdays(usage: SyntheticUsage) -> None:
    weekday: list[int] = []
    weekend: list[int] = []
    for org in ORGS:
        for i in range(56):
            day = date(2025, 1, 6) + timedelta(days=i)
            (weekend if day.weekday() >= 5 else weekday).append(usage.day_row_count(org, day))
    weekday_mean = sum(weekday) / len(weekday)
    weekend_mean = sum(weekend) / len(weekend)
    assert 0.15 < weekend_mean / weekday_mean < 0.5
    assert 0.8 * usage.rows_per_day < weekday_mean < 1.2 * usage.rows_per_day


def test_rows_per_day_scales_volume() -> None:
    def mean_weekday(rows_per_day: int) -> float:
        gen = SyntheticUsage(rows_per_day=rows_per_day)
        days = [date(2025, 2, 3) + timedelta(days=i) for i in range(28)]
        counts = [gen.day_row_count(o, d) for o in ORGS for d in days if d.weekday() < 5]
        return sum(counts) / len(counts)

    small, large = mean_weekday(50), mean_weekday(400)
    assert 0.7 * 50 < small < 1.3 * 50
    assert 0.8 * 400 < large < 1.2 * 400


def test_day_to_day_volume_varies_and_some_project_days_spike(usage: SyntheticUsage) -> None:
    days = [date(2025, 1, 6) + timedelta(days=i) for i in range(70)]
    weekday_counts = {usage.day_row_count(ORGS[0], d) for d in days if d.weekday() < 5}
    assert len(weekday_counts) > 10
    per_project: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for org in ORGS:
        for day in days:
            if day.weekday() < 5:
                for row in usage.rows_for_day(org, day):
                    per_project[(org, get(row, "PROJECT_NAME"))][day.isoformat()] += 1
    spikes = 0
    for counts in per_project.values():
        ordered = sorted(counts.values())
        median = ordered[len(ordered) // 2]
        spikes += sum(1 for n in ordered if n > 2.5 * median)
    assert spikes >= 2


# ---------------------------------------------------------------- encoding and invariants


def test_every_row_has_48_well_formed_fields(sample: list[tuple[str, ...]]) -> None:
    assert len(sample) > 3000
    for row in sample:
        assert len(row) == 48
        for name, value in zip(EXPORT_COLUMN_NAMES, row, strict=True):
            assert isinstance(value, str)
            assert not any(ch in value for ch in ',"\r\n'), (name, value)
            if value == NULL_MARKER:
                continue
            assert FORMATS[COLUMN_KINDS[name]].fullmatch(value), (name, value)
        for name in WHOLE_SECOND_COLUMNS:
            value = get(row, name)
            assert is_null(value) or value.endswith(".000"), (name, value)


def test_null_marker_is_the_three_characters_backslash_backslash_n(
    sample: list[tuple[str, ...]],
) -> None:
    nulls = {v for row in sample for v in row if "\\" in v or v == "N"}
    assert nulls == {"\\\\N"}


def test_credits_add_up_and_compute_follows_the_rate(sample: list[tuple[str, ...]]) -> None:
    for row in sample:
        components = [int(get(row, c)) for c in CREDIT_COMPONENT_COLUMNS]
        assert int(get(row, TOTAL_CREDITS_COLUMN)) == sum(components)
        seconds = get(row, "JOB_RUN_SECONDS")
        if is_null(seconds):
            assert sum(components) == 0
            continue
        rate = CREDITS_PER_MINUTE.get((get(row, "RESOURCE_CLASS"), get(row, "EXECUTOR")))
        if get(row, "EXECUTOR") == "runner":
            rate = 0
        assert rate is not None, row
        expected = math.ceil(int(seconds) * rate * int(get(row, "PARALLELISM")) / 60)
        assert int(get(row, "COMPUTE_CREDITS")) == expected


def test_rare_credit_components_are_mostly_zero(sample: list[tuple[str, ...]]) -> None:
    for column in ("USER_CREDITS", "LEASE_CREDITS", "LEASE_OVERAGE_CREDITS", "IPRANGES_CREDITS"):
        nonzero = sum(get(r, column) != "0" for r in sample)
        assert nonzero < 0.1 * len(sample), column
    assert any(get(r, "DLC_CREDITS") != "0" for r in sample)
    assert any(get(r, "NETWORK_CREDITS") != "0" for r in sample)
    assert sum(get(r, "NETWORK_CREDITS") == "0" for r in sample) > len(sample) / 2


def test_seconds_equal_stop_minus_start(sample: list[tuple[str, ...]]) -> None:
    ran = [r for r in sample if not is_null(get(r, "JOB_RUN_SECONDS"))]
    assert ran
    for row in ran:
        start, stop = ts(get(row, "JOB_RUN_STARTED_AT")), ts(get(row, "JOB_RUN_STOPPED_AT"))
        assert int(get(row, "JOB_RUN_SECONDS")) == (stop - start).total_seconds() >= 1
        assert ts(get(row, "JOB_RUN_QUEUED_AT")) <= start


def test_utilisation_nulls_and_bounds(sample: list[tuple[str, ...]]) -> None:
    with_values = 0
    for row in sample:
        values = [get(row, c) for c in UTIL]
        seconds = get(row, "JOB_RUN_SECONDS")
        if is_null(seconds) or int(seconds) < 15 or get(row, "EXECUTOR") == "runner":
            assert all(is_null(v) for v in values), row
            continue
        if any(is_null(v) for v in values):
            assert all(is_null(v) for v in values)
            continue
        with_values += 1
        cpu_med, cpu_max, ram_med, ram_max = (int(v) for v in values)
        assert 0 <= cpu_med <= cpu_max <= 100
        assert 0 <= ram_med <= ram_max <= 100
    assert with_values > len(sample) / 2


def test_right_sizing_has_something_to_find(sample: list[tuple[str, ...]]) -> None:
    by_job: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in sample:
        if not is_null(get(row, "MAX_CPU_UTILIZATION_PCT")):
            by_job[(get(row, "PROJECT_ID"), get(row, "JOB_NAME"))].append(
                int(get(row, "MAX_CPU_UTILIZATION_PCT"))
            )
    averages = [sum(v) / len(v) for v in by_job.values() if len(v) >= 5]
    assert any(a < 40 for a in averages)  # over-provisioned
    assert any(a > 95 for a in averages)  # saturated


def test_a_job_keeps_its_resource_class_and_os_matches_it(sample: list[tuple[str, ...]]) -> None:
    classes: dict[tuple[str, str], set[tuple[str, str, str, str]]] = defaultdict(set)
    for row in sample:
        if is_null(get(row, "RESOURCE_CLASS")):  # never ran, or queued
            continue
        rc, os_name = get(row, "RESOURCE_CLASS"), get(row, "OPERATING_SYSTEM")
        classes[(get(row, "PROJECT_ID"), get(row, "JOB_NAME"))].add(
            (rc, get(row, "EXECUTOR"), os_name, get(row, "PARALLELISM"))
        )
        expected_os = (
            "windows"
            if rc.startswith("windows.")
            else "macos"
            if rc.startswith(("macos.", "m4pro."))
            else "linux"
        )
        assert os_name == expected_os
    assert all(len(v) == 1 for v in classes.values())


def test_the_retired_macos_class_gives_way_to_m4pro_on_its_end_of_life() -> None:
    """macOS M1 reached end of life on 2026-02-16 (circleci-data-facts.md §4)."""
    usage = SyntheticUsage()

    def mac_classes(first: date) -> set[str]:
        days = [first + timedelta(days=i) for i in range(5)]
        rows = [r for org in ORGS for day in days for r in usage.rows_for_day(org, day)]
        return {get(r, "RESOURCE_CLASS") for r in rows if get(r, "EXECUTOR") == "macos"}

    assert mac_classes(date(2026, 2, 9)) == {"macos.m1.medium.gen1"}
    assert mac_classes(date(2026, 2, 16)) == {"m4pro.medium"}


def test_statuses_cover_the_real_set(sample: list[tuple[str, ...]]) -> None:
    statuses = Counter(get(r, "JOB_BUILD_STATUS") for r in sample)
    assert set(statuses) == {"success", "failed", "canceled", "blocked", "queued", "running"}
    # The real export: success 75 %, canceled 14 % (test_realism.py checks the shares closely).
    assert 0.65 * len(sample) < statuses["success"] < 0.85 * len(sample)
    # Long-over days keep `running` only as stuck rows, which look like never-ran rows.
    running = [r for r in sample if get(r, "JOB_BUILD_STATUS") == "running"]
    assert all(is_null(get(r, "JOB_NAME")) for r in running)


def test_queued_rows_keep_name_number_and_parallelism(sample: list[tuple[str, ...]]) -> None:
    queued = [r for r in sample if get(r, "JOB_BUILD_STATUS") == "queued"]
    assert queued
    for row in queued:
        for name in ("JOB_NAME", "JOB_RUN_NUMBER", "PARALLELISM", "JOB_RUN_STARTED_AT"):
            assert not is_null(get(row, name)), name
        for name in NEVER_RAN_NULLS:
            if name not in ("JOB_NAME", "JOB_RUN_NUMBER", "PARALLELISM"):
                assert is_null(get(row, name)), name
        assert get(row, TOTAL_CREDITS_COLUMN) == "0"


def test_never_ran_rows_look_like_the_real_third_row(sample: list[tuple[str, ...]]) -> None:
    never = [r for r in sample if is_null(get(r, "JOB_NAME"))]
    assert never
    for row in never:
        assert get(row, "JOB_BUILD_STATUS") in {"canceled", "blocked", "running"}
        for name in NEVER_RAN_NULLS:
            assert is_null(get(row, name)), name
        assert all(get(row, c) == "0" for c in (*CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN))
        assert not is_null(get(row, "JOB_RUN_STARTED_AT"))
        assert not is_null(get(row, "JOB_ID"))
        assert get(row, "IS_WORKFLOW_SUCCESSFUL") == "false"


def test_dates_and_workflow_times_agree(sample: list[tuple[str, ...]]) -> None:
    crossed_midnight = 0
    for row in sample:
        wf_start = ts(get(row, "WORKFLOW_FIRST_JOB_STARTED_AT"))
        assert get(row, "JOB_RUN_DATE") == wf_start.date().isoformat()
        job_start = ts(get(row, "JOB_RUN_STARTED_AT"))
        assert job_start >= wf_start
        assert ts(get(row, "WORKFLOW_FIRST_JOB_QUEUED_AT")) <= wf_start
        assert ts(get(row, "PIPELINE_CREATED_AT")) < ts(get(row, "WORKFLOW_FIRST_JOB_QUEUED_AT"))
        assert ts(get(row, "WORKFLOW_STOPPED_AT")) >= wf_start
        if not is_null(get(row, "JOB_RUN_STOPPED_AT")):
            assert ts(get(row, "JOB_RUN_STOPPED_AT")) <= ts(get(row, "WORKFLOW_STOPPED_AT"))
        crossed_midnight += job_start.date() != wf_start.date()
    assert crossed_midnight < 0.02 * len(sample)


def test_workflow_success_flag_matches_its_jobs(sample: list[tuple[str, ...]]) -> None:
    jobs: dict[str, list[str]] = defaultdict(list)
    flags: dict[str, set[str]] = defaultdict(set)
    for row in sample:
        jobs[get(row, "WORKFLOW_ID")].append(get(row, "JOB_BUILD_STATUS"))
        flags[get(row, "WORKFLOW_ID")].add(get(row, "IS_WORKFLOW_SUCCESSFUL"))
    for wf, statuses in jobs.items():
        assert flags[wf] == {"true" if all(s == "success" for s in statuses) else "false"}


def test_pipeline_and_project_attributes(sample: list[tuple[str, ...]]) -> None:
    projects: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    sources: Counter[str] = Counter()
    branches: Counter[str] = Counter()
    for row in sample:
        projects[get(row, "PROJECT_ID")].add(
            tuple(get(row, c) for c in ("PROJECT_NAME", "PROJECT_CREATED_DATE", "VCS_URL"))
        )
        source = get(row, "PIPELINE_TRIGGER_SOURCE")
        sources[source] += 1
        if source == "scheduled_pipeline":
            assert is_null(get(row, "PIPELINE_TRIGGER_USER_ID"))
        created = get(row, "PIPELINE_CREATED_AT")
        branch = get(row, "VCS_BRANCH")
        branches[branch.split("/")[0] if "/" in branch else branch] += 1
        assert get(row, "PROJECT_CREATED_DATE") <= created[:10]
        assert get(row, "ORGANIZATION_CREATED_DATE") <= get(row, "PROJECT_CREATED_DATE")
    assert all(len(v) == 1 for v in projects.values())
    assert 4 * len(ORGS) <= len(projects) <= 8 * len(ORGS)
    assert {"webhook", "scheduled_pipeline", "api"} <= sources.keys()
    assert branches["main"] == max(branches.values())
    assert branches["dependabot"] > 0
    assert any(not get(r, "PIPELINE_CREATED_AT").endswith(".000") for r in sample)
    assert {get(r, "IS_UNREGISTERED_USER") for r in sample} == {"true", "false"}


# ---------------------------------------------------------------- as_of


@pytest.fixture(scope="module")
def mid_day(usage: SyntheticUsage) -> tuple[datetime, tuple[str, ...]]:
    """An export moment 60 s into a long job of a weekday, and that job's full-day row."""
    day = WEEK[1]
    rows = list(usage.rows_for_day(ORGS[1], day))
    long_jobs = [r for r in rows if int(get(r, "JOB_RUN_SECONDS").replace(NULL_MARKER, "0")) > 300]
    target = long_jobs[len(long_jobs) // 2]
    return ts(get(target, "JOB_RUN_STARTED_AT")) + timedelta(seconds=60), target


def test_mid_day_export_reports_running_jobs(
    usage: SyntheticUsage, mid_day: tuple[datetime, tuple[str, ...]]
) -> None:
    as_of, target = mid_day
    rows = list(usage.rows_for_day(ORGS[1], as_of.date(), as_of=as_of))
    by_id = {get(r, "JOB_ID"): r for r in rows}
    assert get(by_id[get(target, "JOB_ID")], "JOB_BUILD_STATUS") == "running"
    # In-flight jobs carry their name and class; stuck ones look like never-ran rows.
    running = [
        r
        for r in rows
        if get(r, "JOB_BUILD_STATUS") == "running" and not is_null(get(r, "JOB_NAME"))
    ]
    assert running
    for row in running:
        for name in ("JOB_RUN_STOPPED_AT", "JOB_RUN_SECONDS", *UTIL):
            assert is_null(get(row, name))
        assert all(get(row, c) == "0" for c in (*CREDIT_COMPONENT_COLUMNS, TOTAL_CREDITS_COLUMN))
        assert not is_null(get(row, "JOB_NAME")) and not is_null(get(row, "RESOURCE_CLASS"))
        assert ts(get(row, "JOB_RUN_STARTED_AT")) <= as_of
        assert is_null(get(row, "WORKFLOW_STOPPED_AT"))
        assert get(row, "IS_WORKFLOW_SUCCESSFUL") == "false"


def test_mid_day_export_has_nothing_from_after_as_of(
    usage: SyntheticUsage, mid_day: tuple[datetime, tuple[str, ...]]
) -> None:
    as_of, _ = mid_day
    day = as_of.date()
    rows = list(usage.rows_for_day(ORGS[1], day, as_of=as_of))
    full = {get(r, "JOB_ID"): r for r in usage.rows_for_day(ORGS[1], day)}
    started_by_then = {
        j for j, r in full.items() if ts(get(r, "WORKFLOW_FIRST_JOB_STARTED_AT")) <= as_of
    }
    assert {get(r, "JOB_ID") for r in rows} == started_by_then
    assert len(rows) < len(full)
    lbfa = {get(r, "LAST_BUILD_FINISHED_AT") for r in rows}
    for row in rows:
        for name in EXPORT_COLUMN_NAMES:
            if COLUMN_KINDS[name] is ColumnKind.TIMESTAMP and not is_null(get(row, name)):
                assert ts(get(row, name)) <= as_of, (name, get(row, name))
        if get(row, "JOB_BUILD_STATUS") in {"success", "failed"} and not is_null(
            get(row, "WORKFLOW_STOPPED_AT")
        ):
            # Finished work is reported exactly as it will be later, bar the export-time column.
            other = full[get(row, "JOB_ID")]
            lb = COL["LAST_BUILD_FINISHED_AT"]
            assert row[:lb] + row[lb + 1 :] == other[:lb] + other[lb + 1 :]
    assert len(lbfa) <= len({get(r, "PROJECT_ID") for r in rows})


def test_long_over_days_have_no_running_rows(usage: SyntheticUsage) -> None:
    day = WEEK[1]
    later = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(days=3)
    elapsed = list(usage.rows_for_day(ORGS[1], day, as_of=later))
    # Only stuck rows (no job name, as never-ran rows) may still say `running`.
    assert not any(
        get(r, "JOB_BUILD_STATUS") == "running" and not is_null(get(r, "JOB_NAME")) for r in elapsed
    )
    assert len(elapsed) == usage.day_row_count(ORGS[1], day)
    assert {get(r, "LAST_BUILD_FINISHED_AT") for r in elapsed} != {
        get(r, "LAST_BUILD_FINISHED_AT") for r in usage.rows_for_day(ORGS[1], day)
    }


def test_export_before_the_day_is_empty(usage: SyntheticUsage) -> None:
    day = WEEK[1]
    before = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - timedelta(seconds=1)
    assert list(usage.rows_for_day(ORGS[1], day, as_of=before)) == []


@pytest.mark.parametrize("bad", [datetime(2025, 3, 4, 12)], ids=["naive"])
def test_naive_datetimes_are_rejected(usage: SyntheticUsage, bad: datetime) -> None:
    aware = datetime(2025, 3, 4, 12, tzinfo=UTC)
    with pytest.raises(ValueError):
        usage.rows_for_day(ORGS[0], WEEK[1], as_of=bad)
    with pytest.raises(ValueError):
        usage.rows_for_window(ORGS, bad, aware, as_of=aware)
    with pytest.raises(ValueError):
        usage.rows_for_window(ORGS, aware, aware, as_of=bad)


# ---------------------------------------------------------------- rows_for_window


AS_OF = datetime(2025, 4, 1, tzinfo=UTC)


def test_window_yields_exactly_the_rows_started_inside_it(usage: SyntheticUsage) -> None:
    day = WEEK[2]
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    end = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    window = list(usage.rows_for_window(ORGS, start, end, as_of=AS_OF))
    expected = [
        r
        for org in ORGS
        for r in usage.rows_for_day(org, day, as_of=AS_OF)
        if start <= ts(get(r, "WORKFLOW_FIRST_JOB_STARTED_AT")) <= end
    ]
    assert window == expected
    assert len({get(r, "ORGANIZATION_ID") for r in window}) >= 2


def test_window_bounds_are_inclusive(usage: SyntheticUsage) -> None:
    day = WEEK[2]
    rows = list(usage.rows_for_day(ORGS[0], day, as_of=AS_OF))
    starts = sorted({ts(get(r, "WORKFLOW_FIRST_JOB_STARTED_AT")) for r in rows})
    assert len(starts) >= 5
    lo, hi = starts[1], starts[-2]
    inside = list(usage.rows_for_window([ORGS[0]], lo, hi, as_of=AS_OF))
    got = {ts(get(r, "WORKFLOW_FIRST_JOB_STARTED_AT")) for r in inside}
    assert lo in got and hi in got
    assert got == {s for s in starts if lo <= s <= hi}
    second = timedelta(seconds=1)
    narrowed = list(usage.rows_for_window([ORGS[0]], lo + second / 2, hi - second / 2, as_of=AS_OF))
    got = {ts(get(r, "WORKFLOW_FIRST_JOB_STARTED_AT")) for r in narrowed}
    assert lo not in got and hi not in got


def test_window_runs_org_by_org_then_day_by_day(usage: SyntheticUsage) -> None:
    start = datetime(2025, 3, 3, 18, tzinfo=UTC)
    end = datetime(2025, 3, 5, 6, tzinfo=UTC)
    rows = list(usage.rows_for_window(ORGS[:2], start, end, as_of=AS_OF))
    order = [(get(r, "ORGANIZATION_ID"), get(r, "JOB_RUN_DATE")) for r in rows]
    assert order == sorted(order, key=lambda k: (ORGS.index(k[0]), k[1]))
    assert {d for _, d in order} == {"2025-03-03", "2025-03-04", "2025-03-05"}
    whole_day = usage.day_row_count(ORGS[0], date(2025, 3, 4))
    assert sum(1 for o, d in order if o == ORGS[0] and d == "2025-03-04") == whole_day


def test_window_stops_at_as_of(usage: SyntheticUsage) -> None:
    start = datetime(2025, 3, 4, tzinfo=UTC)
    end = datetime(2025, 3, 6, tzinfo=UTC)
    as_of = datetime(2025, 3, 5, 9, 30, tzinfo=UTC)
    rows = list(usage.rows_for_window(ORGS, start, end, as_of=as_of))
    assert rows
    assert max(ts(get(r, "WORKFLOW_FIRST_JOB_STARTED_AT")) for r in rows) <= as_of
