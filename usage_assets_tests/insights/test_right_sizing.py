"""Right-sizing: the rule on hand-picked utilisation, then the table on a small fixture."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pytest

from usage_assets.config import DEFAULT_REFERENCE_DIR
from usage_assets.insights import resource_class_rates, right_sizing
from usage_assets.insights.reference_data import PricePeriod, ResourceClass, read_resource_classes
from usage_assets.insights.resource_class_rates import ClassRate, ResourceClassCatalog
from usage_assets.insights.right_sizing import JobUsage, Recommendation, recommend
from usage_assets_tests.insights.job_rows import DAY, insert, job

CATALOG = ResourceClassCatalog(
    [
        ResourceClass("docker", "small", 1, 2, 5, None),
        ResourceClass("docker", "medium", 2, 4, 10, "small"),
        ResourceClass("docker", "large", 4, 8, 20, "medium"),
        ResourceClass("docker", "xlarge", 8, 16, 40, "large"),
        ResourceClass("runner", "*", None, None, 0, None),
    ]
)


def usage(
    resource_class: str = "medium",
    cpu: float | None = 30.0,
    ram: float | None = 35.0,
    *,
    executor: str = "docker",
    with_utilization: int = 10,
    credits: float = 300.0,
) -> JobUsage:
    return JobUsage(
        "org-1", "acme", "p-web", "web", "test", executor, resource_class, 12, with_utilization,
        cpu, ram, credits,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("job_usage", "window_days", "expected"),
    [
        # medium -> small halves vCPUs (2 -> 1) and RAM (4 -> 2): 30 % -> 60 %, 35 % -> 70 %, both
        # <= 80 %. Saved: 300 credits x (1 - 5/10) = 150 in 30 days = 150 a month.
        (usage(), 30, Recommendation("downsize", None, "small", 60.0, 70.0, 150.0)),
        # The same 300 credits in 15 days is 600 a month, half of it saved: 300.
        (usage(), 15, Recommendation("downsize", None, "small", 60.0, 70.0, 300.0)),
        # 45 % CPU would be 90 % on small: stay.
        (usage(cpu=45), 30, Recommendation("ok")),
        # Nothing smaller than small.
        (usage("small", 10, 10), 30, Recommendation("ok")),
        # At the ceiling from 95 %: the next larger class is the one whose next smaller is this.
        (usage("large", 96, 50), 30, Recommendation("at_ceiling", "cpu", "xlarge")),
        (usage("medium", 20, 97), 30, Recommendation("at_ceiling", "ram", "large")),
        (usage("medium", 95, 100), 30, Recommendation("at_ceiling", "cpu+ram", "large")),
        (usage("xlarge", 99, 10), 30, Recommendation("at_ceiling", "cpu", None)),
        # Fewer than 5 runs with utilisation, or none at all.
        (usage(with_utilization=4), 30, Recommendation("insufficient_data")),
        (usage(cpu=None, ram=None, with_utilization=0), 30, Recommendation("insufficient_data")),
        # A self-hosted runner class matches "runner *" but has no size.
        (usage("acme/gpu", executor="runner"), 30, Recommendation("not_sized")),
        # Not in the file at all.
        (usage("huge"), 30, Recommendation("unknown_class")),
    ],
)
def test_recommend(job_usage: JobUsage, window_days: int, expected: Recommendation) -> None:
    advice, _ = recommend(job_usage, CATALOG, window_days)
    assert advice == expected  # every figure here is exact in binary floating point


def test_the_table_from_job_runs(conn: duckdb.DuckDBPyConnection) -> None:
    old = DAY - timedelta(days=35)
    insert(
        conn,
        [
            # e2e on docker large, 5 runs with utilisation and 40 compute credits each.
            *[
                job(job_name="e2e", resource_class="large", compute_credits=40,
                    median_cpu_utilization_pct=cpu, max_ram_utilization_pct=ram)
                for cpu, ram in ((10, 20), (12, 21), (14, 22), (16, 23), (18, 24))
            ],
            # One more run without utilisation: counted as a run and for its credits.
            job(job_name="e2e", resource_class="large", compute_credits=40),
            # Outside the 30-day window: ignored.
            job(day=old, job_name="e2e", resource_class="large", compute_credits=999,
                median_cpu_utilization_pct=99, max_ram_utilization_pct=99),
            # A class the file does not know.
            job(job_name="odd", resource_class="huge", compute_credits=1),
        ],
    )  # fmt: skip
    classes = read_resource_classes(DEFAULT_REFERENCE_DIR / "resource_classes.csv")
    price = PricePeriod(date(2020, 1, 1), None, "USD", 0.0006)
    loaded = (DAY - timedelta(days=40), DAY)
    result = right_sizing.refresh(conn, loaded, "run-1", classes, price)

    # Window: the last 30 loaded days, DAY - 29 .. DAY.
    assert result.window == (DAY - timedelta(days=29), DAY)
    assert result.unknown_classes == ["docker huge"]
    assert (result.rows, result.downsize_candidates, result.at_ceiling) == (2, 1, 0)
    row = conn.execute(
        "SELECT runs, runs_with_utilization, cpu_p95_pct, ram_p95_pct, vcpus, ram_gib,"
        " credits_per_minute, compute_credits, recommendation, suggested_class,"
        " projected_cpu_pct, projected_ram_pct, est_credits_saved_per_month,"
        " est_cost_saved_per_month, currency"
        " FROM circleci_insights.right_sizing WHERE job_name = 'e2e'"
    ).fetchone()
    # p95 of CPU medians 10..18 at position 0.95 x 4 = 3.8: 16 + 0.8 x 2 = 17.6;
    # of RAM peaks 20..24: 23 + 0.8 x 1 = 23.8. large (4 vCPU, 8 GiB, 20/min) -> medium+
    # (3 vCPU, 6 GiB, 15/min): 17.6 x 4/3 = 23.47 %, 23.8 x 8/6 = 31.73 %.
    # Saved: 6 runs x 40 = 240 credits x (1 - 15/20) = 60 a 30-day month; x 0.0006 = 0.036 USD.
    assert row == pytest.approx(
        (6, 5, 17.6, 23.8, 4.0, 8.0, 20.0, 240.0, "downsize", "medium+",
         17.6 * 4 / 3, 23.8 * 8 / 6, 60.0, 0.036, "USD")
    )  # fmt: skip
    assert conn.execute(
        "SELECT recommendation FROM circleci_insights.right_sizing WHERE job_name = 'odd'"
    ).fetchone() == ("unknown_class",)

    again = right_sizing.refresh(conn, loaded, "run-2", classes, None)
    assert again.rows == 2  # rebuilt, not appended
    assert conn.execute(
        "SELECT est_cost_saved_per_month, currency FROM circleci_insights.right_sizing"
        " WHERE job_name = 'e2e'"
    ).fetchone() == (None, None)  # no price, no money


def test_an_empty_warehouse_gives_an_empty_table(conn: duckdb.DuckDBPyConnection) -> None:
    result = right_sizing.refresh(conn, None, "run-1", [], None)
    assert (result.rows, result.window) == (0, None)


def rate(executor: str, resource_class: str, fitted: float | None, file_rate: float) -> ClassRate:
    used = fitted if fitted is not None else file_rate
    source = "fitted" if fitted is not None else "file"
    return ClassRate(
        executor, resource_class, 10, 10, fitted, file_rate, used, source, True, 8, 32, None, 0.0
    )


# The file as shipped before 2026: machine xlarge at Docker's 40.
OLD_MACHINE = ResourceClassCatalog(
    [
        ResourceClass("machine", "medium", 2, 7.5, 10, None),
        ResourceClass("machine", "large", 4, 15, 20, "medium"),
        ResourceClass("machine", "xlarge", 8, 32, 40, "large"),
    ]
)


@pytest.mark.parametrize(
    ("rates", "saved"),
    [
        # File rates: 1,000 credits x (1 - 20/40) = 500 a month.
        ({}, 500.0),
        # Fitted xlarge 100, large from the file (no runs on it): 1,000 x (1 - 20/100) = 800.
        ({("machine", "xlarge"): rate("machine", "xlarge", 100, 40)}, 800.0),
        # Both fitted: large at 25: 1,000 x (1 - 25/100) = 750.
        (
            {
                ("machine", "xlarge"): rate("machine", "xlarge", 100, 40),
                ("machine", "large"): rate("machine", "large", 25, 20),
            },
            750.0,
        ),
        # A fitted smaller rate above the current one never gives a negative saving.
        ({("machine", "large"): rate("machine", "large", 60, 20)}, 0.0),
    ],
)
def test_savings_use_the_fitted_rates(
    rates: dict[tuple[str, str], ClassRate], saved: float
) -> None:
    job_usage = usage("xlarge", 10, 10, executor="machine", credits=1000.0)
    advice, _ = recommend(job_usage, OLD_MACHINE, 30, rates)
    # 8 -> 4 vCPUs: 10 % -> 20 %; 32 -> 15 GiB: 10 % -> 21.3 %.
    assert (advice.recommendation, advice.suggested_class) == ("downsize", "large")
    assert advice.est_credits_saved_per_month == pytest.approx(saved)


RETIRING = ResourceClassCatalog(
    [
        ResourceClass("macos", "m2pro.medium", 4, 8, 150, None, date(2026, 2, 16)),
        ResourceClass("macos", "m2pro.large", 8, 16, 250, "m2pro.medium", date(2026, 2, 16)),
        # A current class whose ladder points at a retired one, and one a retired class tops.
        ResourceClass("macos", "m4pro.medium", 6, 28, None, None),
        ResourceClass("macos", "m4pro.large", 12, 56, None, "m2pro.medium"),
        ResourceClass("macos", "old.xlarge", 24, 112, 500, "m4pro.large", date(2026, 2, 16)),
    ]
)


@pytest.mark.parametrize(
    ("job_usage", "expected"),
    [
        # On a retired class, whatever its utilisation.
        (usage("m2pro.large", 10, 10, executor="macos"), Recommendation("retired_class")),
        (usage("m2pro.medium", 99, 99, executor="macos"), Recommendation("retired_class")),
        # Idle on m4pro.large, but its next smaller class is retired: not a target.
        (usage("m4pro.large", 10, 10, executor="macos"), Recommendation("ok")),
        # At the ceiling, and the only larger class is retired: none suggested.
        (usage("m4pro.large", 99, 10, executor="macos"), Recommendation("at_ceiling", "cpu")),
    ],
)
def test_a_retired_class_is_never_suggested(job_usage: JobUsage, expected: Recommendation) -> None:
    advice, _ = recommend(job_usage, RETIRING, 30)
    assert advice == expected


def test_the_table_prices_at_the_fitted_rates(conn: duckdb.DuckDBPyConnection) -> None:
    low: dict[str, Any] = {"median_cpu_utilization_pct": 10, "max_ram_utilization_pct": 10}
    insert(
        conn,
        [
            # machine xlarge billed at 100 (600 s: 1,000 credits) while the file says 40.
            *[job(job_name="build", executor="machine", resource_class="xlarge", seconds=600,
                  compute_credits=1000, **low) for _ in range(5)],
            # A class the file lacks, at 50 (600 s: 500 credits), CPU 30 %, RAM 40 %.
            *[job(job_name="odd", executor="machine", resource_class="huge.gen9", seconds=600,
                  compute_credits=500, median_cpu_utilization_pct=30,
                  max_ram_utilization_pct=40) for _ in range(5)],
            # Blank EXECUTOR on 2xlarge+ billed at 300 (60 s: 300): machine's, by its rate.
            *[job(job_name="big", executor=None, resource_class="2xlarge+", seconds=60,
                  compute_credits=300, **low) for _ in range(5)],
        ],
    )  # fmt: skip
    classes = [
        ResourceClass("machine", "large", 4, 15, 20, None),
        ResourceClass("machine", "xlarge", 8, 32, 40, "large"),
        ResourceClass("machine", "2xlarge", 16, 64, 200, None),
        ResourceClass("machine", "2xlarge+", 32, 64, 300, "2xlarge"),
        ResourceClass("docker", "2xlarge+", 20, 40, 100, None),
    ]
    loaded = (DAY - timedelta(days=40), DAY)
    resource_class_rates.refresh(conn, loaded, "run-1", classes)
    result = right_sizing.refresh(conn, loaded, "run-1", classes, None)
    assert result.unknown_classes == ["machine huge.gen9"]
    rows = conn.execute(
        "SELECT job_name, runs, compute_credits, cpu_p95_pct, ram_p95_pct, vcpus,"
        " credits_per_minute, recommendation, suggested_class, est_credits_saved_per_month"
        " FROM circleci_insights.right_sizing ORDER BY job_name"
    ).fetchall()
    assert rows == [
        # 2xlarge+ (32 vCPU, 64 GiB) -> 2xlarge (16, 64): CPU 20 %, RAM 10 %.
        # 1,500 credits x (1 - 200/300) = 500 a month.
        ("big", 5, 1500.0, 10.0, 10.0, 32.0, 300.0, "downsize", "2xlarge", pytest.approx(500.0)),
        # 5,000 credits x (1 - 20/100) = 4,000 a month (the file's rates would say 2,500).
        ("build", 5, 5000.0, 10.0, 10.0, 8.0, 100.0, "downsize", "large", pytest.approx(4000.0)),
        # Unknown to the file, but its runs, credits, utilisation and fitted rate are shown.
        ("odd", 5, 2500.0, 30.0, 40.0, None, 50.0, "unknown_class", None, 0.0),
    ]
