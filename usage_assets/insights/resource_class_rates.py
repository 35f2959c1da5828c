"""`circleci_insights.resource_class_rates`: each resource class's credits per minute, fitted from
the export itself, next to the rate in `resource_classes.csv`.

The file's rates are a guess at a price list (contracts and class generations differ); the export
carries what was billed. For each (executor, resource class) seen in the last FIT_WINDOW_DAYS
loaded days (rates change with contracts, so old days should not vote), from its runs of at least
MIN_FIT_SECONDS with compute credits (0 included: self-hosted runners):

* every run of s seconds, parallelism p and c compute credits admits the per-container rates r
  with  -p <= c - s * r * p / 60 <= p * (1 + r / 60):  CircleCI rounds each container up to the
  credit (up to +1 each), JOB_RUN_SECONDS is truncated (up to r / 60 more each), and real exports
  show a -1 per container too. Rounding the total once (as the simulator does) lies inside the
  same band, so both billing shapes fit;
* `fitted_rate` is the whole number of credits per minute that the most runs admit (CircleCI's
  rates are whole numbers, and a whole-number grid turns the fit into a count of agreeing runs
  instead of a least-squares line an outlier can tilt); ties go to the one nearest the median
  billed per-container rate (60 x c / (p x s)) of the runs. Runs that do not admit it are
  outliers and not used;
* the fit is used when at least MIN_RUNS_TO_FIT runs, and at least MIN_AGREEING_SHARE of the
  eligible ones, agree on it; otherwise the file's rate is (`rate_source` `file`), and with
  neither, the class has no rate (`none`).

`rate_used` is what right-sizing prices a class at. A blank EXECUTOR is looked up by the class
name alone (see `ResourceClassCatalog.find`). The `file_rate_matches` check warns about each class
whose fitted rate differs from the file's by more than RATE_TOLERANCE_CREDITS credits/min and
RATE_TOLERANCE_SHARE of the file rate, and about each class the file lacks or has no rate for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from usage_assets.ingest.duckdb_sql import fetch_one
from usage_assets.ingest.job_runs_rules import RuleResult
from usage_assets.ingest.job_runs_table import JOB_RUNS
from usage_assets.insights.common import SCHEMA, create_rebuilt_table, replace_all_rows, table
from usage_assets.insights.reference_data import ANY_CLASS, ResourceClass

NAME = "resource_class_rates"
RESOURCE_CLASS_RATES = table(NAME)
CHECK_NAME = "file_rate_matches"

FIT_WINDOW_DAYS = 90
MIN_FIT_SECONDS = 30  # shorter runs: one credit of rounding is too large a share of the bill
MIN_RUNS_TO_FIT = 5
MIN_AGREEING_SHARE = 0.5
# The search for the rate spans the median per-container rate +-25 % (+-1): wide enough for any
# rounding, narrow enough that a few absurd rows cannot widen the candidates without bound.
SEARCH_SPAN = 0.25
RATE_TOLERANCE_CREDITS = 1.0
RATE_TOLERANCE_SHARE = 0.05

FITTED = "fitted"
FILE = "file"
NONE = "none"

COLUMNS: dict[str, str] = {
    "window_start": "DATE",
    "window_end": "DATE",
    "executor": "VARCHAR",
    "resource_class": "VARCHAR",
    "runs": "BIGINT",
    "runs_used": "BIGINT",
    "fitted_rate": "DOUBLE",
    "file_rate": "DOUBLE",
    "rate_used": "DOUBLE",
    "rate_source": "VARCHAR",
    "in_file": "BOOLEAN",
    "vcpus": "DOUBLE",
    "ram_gib": "DOUBLE",
    "end_of_life": "DATE",
    "compute_credits": "DOUBLE",
    "insights_run_id": "VARCHAR",
    "refreshed_at": "TIMESTAMPTZ",
}


def rates_disagree(fitted: float, file_rate: float) -> bool:
    """Beyond both tolerances: a credit of rounding on a cheap class, a few % on a dear one."""
    difference = abs(fitted - file_rate)
    return difference > RATE_TOLERANCE_CREDITS and difference > RATE_TOLERANCE_SHARE * file_rate


class ResourceClassCatalog:
    """resource_classes.csv, looked up by (executor, class), with the `*` wildcard."""

    def __init__(self, classes: Sequence[ResourceClass]) -> None:
        self._exact = {(c.executor, c.resource_class): c for c in classes}
        self._by_name: dict[str, list[ResourceClass]] = {}
        for c in classes:
            self._by_name.setdefault(c.resource_class, []).append(c)

    def find(
        self, executor: str, resource_class: str, fitted_rate: float | None = None
    ) -> ResourceClass | None:
        """The file's class. A blank executor (some exports leave EXECUTOR empty) falls back to
        the class name alone: the one class of that name, or, when several executors have it,
        the one whose file rate matches `fitted_rate`; ambiguous otherwise (None)."""
        if executor:
            return self._exact.get((executor, resource_class)) or self._exact.get(
                (executor, ANY_CLASS)
            )
        named = self._by_name.get(resource_class, [])
        if len(named) == 1:
            return named[0]
        if fitted_rate is None:
            return None
        matching = [
            c
            for c in named
            if c.credits_per_minute is not None
            and not rates_disagree(fitted_rate, c.credits_per_minute)
        ]
        return matching[0] if len(matching) == 1 else None

    def smaller(self, current: ResourceClass) -> ResourceClass | None:
        """The next smaller class, unless CircleCI retired it (never a suggested target)."""
        if current.next_smaller_class is None:
            return None
        smaller = self._exact.get((current.executor, current.next_smaller_class))
        return None if smaller is None or smaller.retired else smaller

    def larger(self, current: ResourceClass) -> ResourceClass | None:
        """The cheapest current class whose next smaller class is this one."""
        candidates = [
            c
            for c in self._exact.values()
            if c.executor == current.executor
            and c.next_smaller_class == current.resource_class
            and not c.retired
        ]
        return min(candidates, key=lambda c: c.credits_per_minute or 0.0, default=None)


@dataclass(frozen=True)
class Fit:
    """What the export says about one (executor, class) in the window."""

    executor: str  # "" when EXECUTOR was blank
    resource_class: str
    runs: int  # every run with the class
    compute_credits: float
    eligible: int  # runs the fit could use (long enough, with compute credits)
    runs_used: int  # runs that agree on the fitted rate
    fitted_rate: float | None  # the best rate, even when too few runs agree on it


@dataclass(frozen=True)
class ClassRate:
    """One row of the table."""

    executor: str
    resource_class: str
    runs: int
    runs_used: int
    fitted_rate: float | None  # None: too few runs agree on one rate
    file_rate: float | None
    rate_used: float | None
    rate_source: str  # FITTED, FILE or NONE
    in_file: bool
    vcpus: float | None
    ram_gib: float | None
    end_of_life: date | None
    compute_credits: float


def fit_window(loaded: tuple[date, date]) -> tuple[date, date]:
    return max(loaded[0], loaded[1] - timedelta(days=FIT_WINDOW_DAYS - 1)), loaded[1]


def fit(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> list[Fit]:
    """The fit in the module docstring, in DuckDB: one aggregate per class, never the rows.

    Each eligible run's admitted rates are a whole-number interval [lo, hi]; the count of runs
    admitting each rate is a running sum of +1 at lo and -1 at hi + 1 (a sweep over interval
    ends), so the work grows with the runs, not with runs x candidate rates."""
    rows = conn.execute(
        f"""
        WITH classes AS (
            SELECT coalesce(executor, '') AS executor, resource_class, count(*) AS runs,
                coalesce(sum(compute_credits), 0) AS compute_credits
            FROM {JOB_RUNS}
            WHERE usage_date BETWEEN $first AND $last AND resource_class IS NOT NULL
            GROUP BY ALL
        ),
        eligible AS (
            SELECT coalesce(executor, '') AS executor, resource_class,
                greatest(coalesce(parallelism, 1), 1)::DOUBLE AS p,
                job_run_seconds::DOUBLE AS s, compute_credits::DOUBLE AS c
            FROM {JOB_RUNS}
            WHERE usage_date BETWEEN $first AND $last AND resource_class IS NOT NULL
                AND job_run_seconds >= $min_seconds AND compute_credits >= 0
        ),
        centre AS (
            -- The median billed per-container rate: rounding lifts it by at most 60 / s (2 at
            -- the 30 s floor), and only ties between equally good rates are decided by it.
            SELECT executor, resource_class, count(*) AS eligible,
                median(60 * c / (p * s)) AS r0
            FROM eligible GROUP BY ALL
        ),
        span AS (
            SELECT *, greatest(floor(r0 * (1 - $span)) - 1, 0) AS lo_r,
                ceil(r0 * (1 + $span)) + 1 AS hi_r
            FROM centre
        ),
        intervals AS (
            SELECT e.executor, e.resource_class,
                greatest(ceil(60 * (c - p) / (p * (s + 1))), lo_r) AS lo,
                least(floor(60 * (c + p) / (p * s)), hi_r) AS hi
            FROM eligible e JOIN span USING (executor, resource_class)
        ),
        edges AS (
            SELECT executor, resource_class, lo AS rate, 1 AS delta FROM intervals WHERE lo <= hi
            UNION ALL
            SELECT executor, resource_class, hi + 1, -1 FROM intervals WHERE lo <= hi
        ),
        steps AS (
            SELECT executor, resource_class, rate, sum(delta) AS delta
            FROM edges GROUP BY ALL
        ),
        segments AS (
            -- From each edge to the next, the same number of runs admit every rate.
            SELECT executor, resource_class, rate AS seg_lo,
                lead(rate) OVER w - 1 AS seg_hi,
                sum(delta) OVER (w ROWS UNBOUNDED PRECEDING) AS agreeing
            FROM steps
            WINDOW w AS (PARTITION BY executor, resource_class ORDER BY rate)
        ),
        best AS (
            SELECT s.executor, s.resource_class,
                arg_min(
                    least(greatest(round(r0), seg_lo), seg_hi),
                    (-agreeing, abs(least(greatest(round(r0), seg_lo), seg_hi) - r0), seg_lo)
                ) AS fitted_rate,
                max(agreeing) AS runs_used
            FROM segments s JOIN span USING (executor, resource_class)
            WHERE seg_hi IS NOT NULL AND agreeing > 0
            GROUP BY ALL
        )
        SELECT k.executor, k.resource_class, k.runs, k.compute_credits,
            coalesce(span.eligible, 0), coalesce(best.runs_used, 0), best.fitted_rate
        FROM classes k
        LEFT JOIN span USING (executor, resource_class)
        LEFT JOIN best USING (executor, resource_class)
        ORDER BY k.executor, k.resource_class
        """,
        {"first": first, "last": last, "min_seconds": MIN_FIT_SECONDS, "span": SEARCH_SPAN},
    ).fetchall()
    return [
        Fit(
            str(executor),
            str(rc),
            int(runs),
            float(credits),
            int(eligible),
            int(used),
            None if rate is None else float(rate),
        )
        for executor, rc, runs, credits, eligible, used, rate in rows
    ]


def fit_is_usable(found: Fit) -> bool:
    return (
        found.fitted_rate is not None
        and found.runs_used >= MIN_RUNS_TO_FIT
        and found.runs_used >= MIN_AGREEING_SHARE * found.eligible
    )


def class_rate(found: Fit, catalog: ResourceClassCatalog) -> ClassRate:
    """The fit against the file: which rate the insights use, and the file's size of the class."""
    fitted = found.fitted_rate if fit_is_usable(found) else None
    spec = catalog.find(found.executor, found.resource_class, fitted)
    file_rate = spec.credits_per_minute if spec else None
    if fitted is not None:
        used, source = fitted, FITTED
    elif file_rate is not None:
        used, source = file_rate, FILE
    else:
        used, source = None, NONE
    return ClassRate(
        executor=found.executor,
        resource_class=found.resource_class,
        runs=found.runs,
        runs_used=found.runs_used if fitted is not None else 0,
        fitted_rate=fitted,
        file_rate=file_rate,
        rate_used=used,
        rate_source=source,
        in_file=spec is not None,
        vcpus=spec.vcpus if spec else None,
        ram_gib=spec.ram_gib if spec else None,
        end_of_life=spec.end_of_life if spec else None,
        compute_credits=found.compute_credits,
    )


@dataclass(frozen=True)
class RatesResult:
    rows: int
    window: tuple[date, date] | None
    fitted: int  # classes priced at their fitted rate
    disagreeing: list[str]  # "executor class: fitted F, file R"


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    create_rebuilt_table(conn, NAME, COLUMNS)


def refresh(
    conn: duckdb.DuckDBPyConnection,
    loaded: tuple[date, date] | None,
    run_id: str,
    classes: Sequence[ResourceClass],
) -> RatesResult:
    """Rebuild the table from the last FIT_WINDOW_DAYS loaded days."""
    ensure_table(conn)
    catalog = ResourceClassCatalog(classes)
    window = fit_window(loaded) if loaded else None
    rates = [class_rate(f, catalog) for f in fit(conn, *window)] if window else []
    replace_all_rows(
        conn,
        NAME,
        list(COLUMNS),
        [
            [
                window[0] if window else None,
                window[1] if window else None,
                r.executor,
                r.resource_class,
                r.runs,
                r.runs_used,
                r.fitted_rate,
                r.file_rate,
                r.rate_used,
                r.rate_source,
                r.in_file,
                r.vcpus,
                r.ram_gib,
                r.end_of_life,
                r.compute_credits,
                run_id,
            ]
            for r in rates
        ],
    )
    return RatesResult(
        rows=len(rates),
        window=window,
        fitted=sum(r.rate_source == FITTED for r in rates),
        disagreeing=[describe(r) for r in rates if disagrees(r)],
    )


def read(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], ClassRate]:
    """The table, by (executor, class); empty before its first refresh. Creates nothing, so a
    read-only connection (the demo's summary) can call it."""
    (exists,) = fetch_one(
        conn,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [SCHEMA, NAME],
    )
    if not exists:
        return {}
    rows = conn.execute(
        f"SELECT executor, resource_class, runs, runs_used, fitted_rate, file_rate, rate_used,"
        f" rate_source, in_file, vcpus, ram_gib, end_of_life, compute_credits"
        f" FROM {RESOURCE_CLASS_RATES} ORDER BY compute_credits DESC, executor, resource_class"
    ).fetchall()
    return {
        (str(row[0]), str(row[1])): ClassRate(
            str(row[0]),
            str(row[1]),
            int(row[2]),
            int(row[3]),
            row[4],
            row[5],
            row[6],
            str(row[7]),
            bool(row[8]),
            row[9],
            row[10],
            row[11],
            float(row[12]),
        )
        for row in rows
    }


def rate_used(
    rates: Mapping[tuple[str, str], ClassRate], executor: str, spec: ResourceClass
) -> float | None:
    """What a class costs per container-minute: its rate in the table (fitted first) for the
    executor the job ran on, else for the file's executor, else the file's rate."""
    for key in ((executor, spec.resource_class), (spec.executor, spec.resource_class)):
        found = rates.get(key)
        if found is not None and found.rate_used is not None:
            return found.rate_used
    return spec.credits_per_minute


def disagrees(rate: ClassRate) -> bool:
    """A fitted rate the file contradicts, lacks, or does not know the class of."""
    if rate.fitted_rate is None:
        return not rate.in_file  # unknown class, too few runs to fit: still worth naming
    if rate.file_rate is None:
        return True
    return rates_disagree(rate.fitted_rate, rate.file_rate)


def describe(rate: ClassRate) -> str:
    name = f"{rate.executor or '(blank executor)'} {rate.resource_class}"
    fitted = "too few runs" if rate.fitted_rate is None else f"{rate.fitted_rate:g}"
    if not rate.in_file:
        file_part = "not in the file"
    elif rate.file_rate is None:
        file_part = "no rate in the file"
    else:
        file_part = f"file {rate.file_rate:g}"
    return f"{name}: fitted {fitted}, {file_part} ({rate.runs_used} of {rate.runs} runs)"


def file_rate_check(conn: duckdb.DuckDBPyConnection) -> RuleResult:
    """The `file_rate_matches` check: each class whose file rate the export contradicts."""
    rates = list(read(conn).values())
    found = [describe(r) for r in rates if disagrees(r)]
    return RuleResult(
        passed=not found,
        description=(
            "every fitted rate matches resource_classes.csv"
            if not found
            else "credits per minute in the export differ from resource_classes.csv (the fitted "
            "rates are used): " + "; ".join(found)
        ),
        metadata={"classes": len(rates), "disagreeing": len(found)},
    )
