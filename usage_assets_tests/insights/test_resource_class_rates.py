"""Fitted credits per minute: hand-worked runs shaped like real export rows (truncated seconds,
per-container rounding, -1 residuals, parallelism, outliers), the table against the shipped file,
and the check that names a class the file misprices."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pytest

from usage_assets.config import DEFAULT_REFERENCE_DIR
from usage_assets.insights import resource_class_rates
from usage_assets.insights.reference_data import ResourceClass, read_resource_classes
from usage_assets.insights.resource_class_rates import Fit, rates_disagree
from usage_assets_tests.insights.job_rows import DAY, insert, job

SHIPPED = read_resource_classes(DEFAULT_REFERENCE_DIR / "resource_classes.csv")
LOADED = (DAY - timedelta(days=120), DAY)


def runs(
    executor: str | None, resource_class: str, billed: list[tuple[float, int, float]], **extra: Any
) -> list[dict[str, Any]]:
    """One job_runs row per (JOB_RUN_SECONDS, PARALLELISM, COMPUTE_CREDITS)."""
    return [
        job(executor=executor, resource_class=resource_class, seconds=s, parallelism=p,
            compute_credits=c, **extra)
        for s, p, c in billed
    ]  # fmt: skip


# Each case: rows, then (fitted rate, runs used, eligible runs). Residuals are against
# ceil(s x r / 60) per container, as in a real export.
CASES = {
    # Truth 100. 600 s: 1000 (0). 601 s: ceil(1001.67) = 1002 (0). 745 s: 1242 - 1 = 1241 (-1, as
    # real exports show). 302 s: 504 + 1 = 505 (+1, truncated seconds). Parallelism 3, 400 s:
    # 3 x ceil(666.67) = 2001. Excluded: parallelism 3 at 99.6 per container (500 s: 2490, 10
    # under 2500, outside the -3 band), an outlier (500 s, 10 credits); a 10 s run is too short
    # to be eligible. At 99 or 101 the 600 s run alone is 10 credits off: 100 is the only fit.
    "machine xlarge, parallelism 3": (
        runs(
            "machine",
            "xlarge",
            [
                (600, 1, 1000),
                (601, 1, 1002),
                (745, 1, 1241),
                (302, 1, 505),
                (400, 3, 2001),
                (500, 3, 2490),
                (500, 1, 10),
                (10, 1, 500),
            ],
        ),
        (100.0, 5, 7),
    ),
    # The simulator's shape: the total rounded once, ceil(s x 15 x 3 / 60) = ceil(0.75 s).
    "docker medium+, total rounded once": (
        runs(
            "docker",
            "medium+",
            [(100, 3, 75), (250, 3, 188), (333, 3, 250), (410, 3, 308), (512, 3, 384)],
        ),
        (15.0, 5, 5),
    ),
    # Truth 240: 300 s 1200; 451 s ceil(1804) + 1; 620 s 2480; 1000 s 4000 - 1; 75 s 300.
    "gpu.nvidia.medium.multi": (
        runs(
            "machine",
            "gpu.nvidia.medium.multi",
            [(300, 1, 1200), (451, 1, 1805), (620, 1, 2480), (1000, 1, 3999), (75, 1, 300)],
        ),
        (240.0, 5, 5),
    ),
    # Truth 200 (the file has no rate): 120 s 400; 333 s 1110; 480 s 1600; 900 s 3000 + 1;
    # 61 s ceil(203.3) = 204.
    "m4pro.medium, no file rate": (
        runs(
            "macos",
            "m4pro.medium",
            [(120, 1, 400), (333, 1, 1110), (480, 1, 1600), (900, 1, 3001), (61, 1, 204)],
        ),
        (200.0, 5, 5),
    ),
    # Self-hosted runners bill no compute: 0.
    "runner": (
        runs(
            "runner", "acme/gpu", [(100, 1, 0), (200, 1, 0), (300, 2, 0), (400, 1, 0), (500, 1, 0)]
        ),
        (0.0, 5, 5),
    ),
    # 5 runs agree on 20; 6 outliers (60 s billed 2, 5, 8, 31, 39, 47) agree with nothing: the
    # best fit is 20, but under half the eligible runs agree (see the next test).
    "mostly outliers": (
        runs(
            "docker",
            "large",
            [
                (60, 1, 20),
                (120, 1, 40),
                (180, 1, 60),
                (240, 1, 80),
                (300, 1, 100),
                (60, 1, 2),
                (60, 1, 5),
                (60, 1, 8),
                (60, 1, 31),
                (60, 1, 39),
                (60, 1, 47),
            ],
        ),
        (20.0, 5, 11),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fit(conn: duckdb.DuckDBPyConnection, case: str) -> None:
    rows, (rate, used, eligible) = CASES[case]
    insert(conn, rows)
    (found,) = resource_class_rates.fit(conn, DAY, DAY)
    assert (found.fitted_rate, found.runs_used, found.eligible, found.runs) == (
        rate,
        used,
        eligible,
        len(rows),
    )


def test_fewer_agreeing_runs_than_the_minimum_or_than_half_leave_the_file_rate() -> None:
    catalog = resource_class_rates.ResourceClassCatalog(SHIPPED)
    four = Fit("docker", "large", 9, 80.0, eligible=4, runs_used=4, fitted_rate=24.0)
    half = Fit("docker", "large", 11, 80.0, eligible=11, runs_used=5, fitted_rate=24.0)
    six = Fit("docker", "large", 11, 80.0, eligible=11, runs_used=6, fitted_rate=24.0)
    assert [
        (r.fitted_rate, r.rate_used, r.rate_source, r.runs_used)
        for r in (resource_class_rates.class_rate(f, catalog) for f in (four, half, six))
    ] == [(None, 20.0, "file", 0), (None, 20.0, "file", 0), (24.0, 24.0, "fitted", 6)]


@pytest.mark.parametrize(
    ("fitted", "file_rate", "differ"),
    [
        (100, 40, True),  # the old machine xlarge
        (11, 10, False),  # one credit
        (11.5, 10, True),  # over a credit and over 5 %
        (209, 200, False),  # 4.5 %
        (211, 200, True),
        (0, 0, False),
    ],
)
def test_rates_disagree(fitted: float, file_rate: float, differ: bool) -> None:
    assert rates_disagree(fitted, file_rate) is differ


def test_the_table_against_the_shipped_file(conn: duckdb.DuckDBPyConnection) -> None:
    insert(
        conn,
        [
            *CASES["machine xlarge, parallelism 3"][0],
            *CASES["m4pro.medium, no file rate"][0],
            # A class the file does not know, at 50: 60 s 50, 120 s 100, 121 s ceil(100.8),
            # 300 s 250, 600 s 500.
            *runs("machine", "huge.gen9", [(60, 1, 50), (120, 1, 100), (121, 1, 101),
                (300, 1, 250), (600, 1, 500)]),
            # Blank EXECUTOR: a unique name (machine's GPU class) ...
            *runs(None, "gpu.nvidia.medium.multi", [(300, 1, 1200), (451, 1, 1805),
                (620, 1, 2480), (1000, 1, 3999), (75, 1, 300)]),
            # ... a name docker (100) and machine (300) share, told apart by the fitted 300 ...
            *runs(None, "2xlarge+", [(60, 1, 300), (120, 1, 600), (200, 1, 1000), (301, 1, 1505),
                (400, 1, 2000)]),
            # ... and one three executors share at the same rate: not resolved.
            *runs(None, "large", [(60, 1, 20), (120, 1, 40), (180, 1, 60), (240, 1, 80),
                (300, 1, 100)]),
            # Too few runs: the file's 10.
            *runs("docker", "medium", [(60, 1, 10), (120, 1, 20)]),
            # Before the 90-day window: not counted.
            *runs("docker", "medium", [(60, 1, 99)] * 5, day=DAY - timedelta(days=90)),
        ],
    )  # fmt: skip
    result = resource_class_rates.refresh(conn, LOADED, "run-1", SHIPPED)
    assert result.window == (DAY - timedelta(days=89), DAY)
    table = conn.execute(
        "SELECT executor, resource_class, runs, runs_used, fitted_rate, file_rate, rate_used,"
        " rate_source, in_file, vcpus, end_of_life"
        " FROM circleci_insights.resource_class_rates ORDER BY executor, resource_class"
    ).fetchall()
    assert table == [
        ("", "2xlarge+", 5, 5, 300.0, 300.0, 300.0, "fitted", True, 32.0, None),
        ("", "gpu.nvidia.medium.multi", 5, 5, 240.0, 240.0, 240.0, "fitted", True, 8.0, None),
        ("", "large", 5, 5, 20.0, None, 20.0, "fitted", False, None, None),
        ("docker", "medium", 2, 0, None, 10.0, 10.0, "file", True, 2.0, None),
        ("machine", "huge.gen9", 5, 5, 50.0, None, 50.0, "fitted", False, None, None),
        ("machine", "xlarge", 8, 5, 100.0, 100.0, 100.0, "fitted", True, 8.0, None),
        ("macos", "m4pro.medium", 5, 5, 200.0, None, 200.0, "fitted", True, 6.0, None),
    ]
    assert (result.rows, result.fitted) == (7, 6)
    assert result.disagreeing == [
        "(blank executor) large: fitted 20, not in the file (5 of 5 runs)",
        "machine huge.gen9: fitted 50, not in the file (5 of 5 runs)",
        "macos m4pro.medium: fitted 200, no rate in the file (5 of 5 runs)",
    ]

    again = resource_class_rates.refresh(conn, LOADED, "run-2", SHIPPED)
    assert again.rows == 7  # rebuilt, not appended


def test_the_check_names_the_class_the_file_misprices(conn: duckdb.DuckDBPyConnection) -> None:
    insert(conn, CASES["machine xlarge, parallelism 3"][0])
    old_file = [
        ResourceClass("machine", "xlarge", 8, 32, 40, None)
    ]  # Docker's rate, as shipped once
    resource_class_rates.refresh(conn, LOADED, "run-1", old_file)
    check = resource_class_rates.file_rate_check(conn)
    assert not check.passed
    assert check.description == (
        "credits per minute in the export differ from resource_classes.csv (the fitted rates are"
        " used): machine xlarge: fitted 100, file 40 (5 of 8 runs)"
    )

    resource_class_rates.refresh(conn, LOADED, "run-2", SHIPPED)  # the corrected file: 100
    assert resource_class_rates.file_rate_check(conn).passed


def test_no_loaded_days_and_no_table_yet(conn: duckdb.DuckDBPyConnection) -> None:
    assert resource_class_rates.read(conn) == {}  # never refreshed: nothing, nothing created
    assert resource_class_rates.refresh(conn, None, "run-1", SHIPPED).rows == 0
    assert resource_class_rates.file_rate_check(conn).passed


def test_a_blank_executor_is_looked_up_by_name() -> None:
    catalog = resource_class_rates.ResourceClassCatalog(SHIPPED)

    def found(name: str, rate: float | None) -> tuple[str, str] | None:
        spec = catalog.find("", name, rate)
        return (spec.executor, spec.resource_class) if spec else None

    assert found("gpu.nvidia.medium.multi", None) == ("machine", "gpu.nvidia.medium.multi")
    assert found("2xlarge+", 300) == ("machine", "2xlarge+")
    assert found("2xlarge+", 100) == ("docker", "2xlarge+")
    assert found("2xlarge+", None) is None  # ambiguous and no fit to tell
    assert found("large", 20) is None  # docker, machine and remote-docker all at 20
    assert found("nonesuch", 20) is None
    assert date(2026, 2, 16) == catalog.find("macos", "m2pro.large").end_of_life  # type: ignore[union-attr]
