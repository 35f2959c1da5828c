"""Deterministic synthetic CircleCI usage data, encoded exactly like a real usage export.

The model, top down:

* **Organisation.** An org id (whatever string the caller uses) maps to a stable org: a name, a
  created date, a home time zone (which shapes the hours at which people push), a pool of users,
  and 4-8 projects drawn from a catalogue of archetypes (web frontend, Python API, mobile, Windows
  desktop, Terraform, docs, ML, SDK matrix, monorepo, firmware on self-hosted runners), kept as
  plain data in ``catalogue.py``.
* **Project.** Stable UUID, name, created date and VCS URL; a duration factor and a small CPU/RAM
  offset so the same archetype looks a little different in each org; and a handful of *pipeline
  definitions*: pushes (any branch), merges to the default branch (deploys), tag pushes (releases,
  with no branch, as the real file has a few null branches) and schedules (nightly jobs, drift
  checks).
* **Pipeline -> workflows -> stages -> jobs.** A pipeline run starts one or more workflows; a
  workflow is a sequence of stages whose jobs run in parallel. Every job keeps its resource class,
  parallelism, typical duration (a log-normal around a median) and CPU/RAM profile across runs, so
  per-job p95s and right-sizing findings are stable: some jobs idle on big machines, some sit at
  100 %.
* **Outcomes.** Jobs fail with a per-job rate (higher on feature and dependabot branches); a failure
  blocks the later stages (rows with status ``blocked`` that never ran); workflows on busy branches
  get auto-canceled part way, and expensive jobs get canceled by hand (running jobs end
  ``canceled``, later ones are canceled without ever running); and about 2 % of jobs are stuck
  ``running``/``queued``/``blocked`` forever, as in real exports. The shares, the utilisation,
  storage, network and DLC shapes are calibrated to a real export (the constants below cite
  circleci-data-facts.md; ``usage_assets_tests/simulator/test_realism.py`` measures them).
* **Volume.** ``rows_per_day`` is the mean number of job-run rows per org on a weekday. Each day
  gets deterministic jitter per org and per project, weekends run at about 30 %, and a few percent
  of project-days carry a clear spike (3-5x) for anomaly checks. The number of workflow runs per
  (project, pipeline definition, day) is drawn from its own random stream, separately from the row
  contents, which is what lets ``day_row_count`` answer without generating any rows.

Determinism: every random stream is a ``random.Random`` seeded from a BLAKE2 hash of
(seed, org, day, purpose), never from Python's salted ``hash()``, and only ``random()`` and
``getrandbits()`` are used because their output is stable across Python versions. The export
moment (``as_of``) never feeds a random stream: it only decides how already-simulated jobs are
reported, so a row exported mid-day has the same ids and times as the same row exported later.

Rows come out org by org, day by day (``rows_for_window``); ``rows_for_export`` mixes them as a
real export file does. Encoding follows ``usage_assets.circleci.export_format`` (the 2024 dialect;
``parts.write_parts`` can write the 2026 one): no quoting, ``\\\\N`` for null, ``true``/``false``,
``YYYY-MM-DD HH:MM:SS.fff`` timestamps (job/workflow times whole seconds, pipeline and last-build
times with real milliseconds), integers for every number.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from statistics import NormalDist
from typing import Any

from usage_assets.circleci.export_format import (
    EXPORT_COLUMN_NAMES,
    FALSE_TEXT,
    NULL_MARKER,
    TRUE_TEXT,
)
from usage_assets.simulator.catalogue import (
    _ARCHETYPES,
    _DEP_PACKAGES,
    _J,
    _LOCAL_HOUR_WEIGHT,
    _ORG_WORDS_A,
    _ORG_WORDS_B,
    _PEOPLE,
    _RESOURCE_CLASSES,
    _SUCCESSORS,
    _TIME_ZONES,
    _TOPICS,
)

__all__ = ["SyntheticUsage"]

N = NULL_MARKER
_DAY = 86_400
_DAY_MS = 86_400_000
if len(EXPORT_COLUMN_NAMES) != 48:  # the row layout below is written out column by column
    raise RuntimeError("synthetic.py must be updated for the new export columns")

_WEEKEND_FACTOR = 0.25  # for triggered pipelines; schedules keep running, so the total is ~30 %
_SPIKE_P = 0.03
_SPIKE_LO, _SPIKE_HI = 3.0, 5.0
_SPIKE_NORM = 1.0 + _SPIKE_P * ((_SPIKE_LO + _SPIKE_HI) / 2 - 1.0)  # keeps the mean at rows_per_day
_ORG_JITTER = 0.15
_PROJECT_JITTER = 0.2
# Shapes measured on a real export (circleci-data-facts.md §3.2/§3.3); the realism test
# (usage_assets_tests/simulator/test_realism.py) checks the rows against them.
# Jobs left non-terminal forever (§3.2 row 30: running 1.1 %, queued 0.4 % of rows, months later).
_P_STUCK = 0.02
_STUCK_RUNNING, _STUCK_QUEUED = 0.6, 0.85  # cumulative shares of stuck jobs; the rest `blocked`
# Runs of >= 15 s without utilisation, by executor (§3.2 rows 36-39: docker 23 %, machine 38 %,
# remote-docker 75 %, runner 100 %; macOS is unobserved and taken as machine).
_UTIL_NULL = {"docker": 0.23, "machine": 0.38, "macos": 0.38, "remote-docker": 0.75, "runner": 1.0}
# Max RAM p50 21 / p95 76 / max 97, >= 95 % in 0.7 % of runs (§3.2): the catalogue's RAM profiles
# are relative (which job is heavier), mapped onto that scale by x -> 100 (x/100)^_RAM_EXP and
# capped; a run peaks at 95-97 % only by a rare spike.
_RAM_EXP = 3.0
_RAM_MAX_CAP = 78
_P_RAM_PEAK = 0.007
# Median CPU at 100 % in ~17 % of runs (§3.2): a CPU-bound job (typical median >= this) is
# pinned at 100 % on this share of its runs (single-threaded jobs sit at 50 % / 25 % instead).
_CPU_BOUND, _P_PINNED = 80, 0.4
# Storage: non-zero on 43 % of rows, runner rows included, 11.7 % of all credits, p95 181,
# max 5,013 (§3.2 row 43): a log-normal amount on a share of the runs that ran.
_P_STORAGE = 0.53
# Canceled: 14.2 % of rows, failed 5.1 %, and the two hold 24 % of all credits (§3.2 row 30,
# §3.3): auto-cancel of redundant workflows is common, most on busy feature branches. Per push
# kind: (failure multiplier, chance a workflow is canceled part way).
_FAIL_MAIN, _CANCEL_MAIN = 1.0, 0.01
_FAIL_FEATURE, _CANCEL_FEATURE = 2.0, 0.09
_FAIL_BOT, _CANCEL_BOT = 2.5, 0.04
_CANCEL_OTHER = 0.01
# An expensive job is also canceled by hand (or by a timeout) part way, which cancels its
# workflow from then on: chance = its typical credits per run / _SELF_CANCEL_CREDITS, at most
# _SELF_CANCEL_MAX. This is what puts so many credits on canceled rows.
_SELF_CANCEL_CREDITS, _SELF_CANCEL_MAX = 4000, 0.3
_STORAGE_MEDIAN, _STORAGE_SIGMA = 34, 1.6
# Network: only traffic to self-hosted runners is billed (§3.2 row 44; CircleCI persist-data docs).
_P_NETWORK = 0.2
# Rows held back while mixing an export's order (SyntheticUsage.rows_for_export).
_MIX_BUFFER = 512
_RARE_USER, _RARE_LEASE, _RARE_OVERAGE = 0.0002, 0.0012, 0.0017  # cumulative thresholds

# Quantiles of a standard normal, so a job's duration is one table lookup per run instead of a
# call to lognormvariate (whose implementation is not guaranteed stable across versions).
_NQ = 512
_Z = tuple(NormalDist().inv_cdf((i + 0.5) / _NQ) for i in range(_NQ))
# Queue wait in seconds: mostly 0-3 s with a long tail to about two minutes.
_QUEUE = tuple(int(0.5 * math.exp(i / 64 * 5.5)) for i in range(64))

_HH = tuple(f"{h:02d}:" for h in range(24))
_MMSS = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_MMSS_000 = tuple(x + ".000" for x in _MMSS)
_MS3 = tuple(f".{i:03d}" for i in range(1000))
# Utilisation percentages and the small credit components (IP ranges, lease, lease overage)
# all stay within 0..100; a table lookup is cheaper than str() on the hot path.
_SMALL_TEXT = tuple(str(i) for i in range(101))
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_SET = (0x4 << 76) | (0x2 << 62)
_FORBIDDEN = frozenset(',"\n\r')


def _uuid(n: int) -> str:
    """Format 128 random bits as a version-4 UUID (faster than uuid.UUID(...).__str__)."""
    h = "%032x" % ((n & _UUID_CLEAR) | _UUID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _seed(*parts: object) -> int:
    key = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_seed(*parts))


@functools.lru_cache(maxsize=64)
def _date_text(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _ms_timestamp(day_ordinal: int, ms: int) -> str:
    """A timestamp with real milliseconds; ms counts from midnight of day_ordinal, any sign."""
    d, ms = divmod(ms, _DAY_MS)
    s, frac = divmod(ms, 1000)
    h, rem = divmod(s, 3600)
    return f"{_date_text(day_ordinal + d)} {_HH[h]}{_MMSS[rem]}{_MS3[frac]}"


def _check_text(value: str, what: str) -> None:
    if _FORBIDDEN.intersection(value):
        raise ValueError(f"{what} {value!r} contains a comma, quote or line break")


# --------------------------------------------------------------------------------------------
# Precomputed per-org structures
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    name: str
    rc: str
    os: str
    executor: str
    par: str
    credit_rate: int  # credits per minute times parallelism
    durations: tuple[int, ...]  # _NQ quantiles of this job's run time in seconds
    fail: float
    cpu_med: int
    cpu_max: int
    ram_med: int
    ram_max: int
    util_null: float  # chance of null utilisation for a run of >= 15 s
    cpu_pinned: float  # chance a run's median CPU is exactly 100 %
    self_cancel: float  # chance a run is canceled part way on its own (_SELF_CANCEL_CREDITS)
    dlc: int
    dlc_text: str
    net_q: tuple[int, ...]  # _NQ quantiles of network credits when a run moves data; () = none
    storage_q: tuple[int, ...]  # _NQ quantiles of storage credits when a run stores something
    ipranges: bool
    successor: _Job | None = None  # the class that replaces this one's from successor_from on
    successor_from: int = 0  # a date ordinal


@dataclass(slots=True)
class _Workflow:
    name: str
    stages: tuple[tuple[_Job, ...], ...]
    delay: int
    expected_s: int  # typical end-to-end duration, to place auto-cancels part way


@dataclass(slots=True)
class _Pipeline:
    kind: str
    workflows: tuple[_Workflow, ...]
    rows_per_run: int
    weekday_lam: float  # mean runs per weekday before jitter (triggered kinds)
    scheduled_runs: int  # runs per day (schedule kind)
    schedule_offset: int  # seconds after midnight of the first scheduled run


@dataclass(slots=True)
class _Project:
    index: int
    id: str
    name: str
    created_ordinal: int
    head: tuple[str, ...]  # ORGANIZATION_ID .. PROJECT_CREATED_DATE
    vcs: tuple[str, str]  # VCS_NAME, VCS_URL
    default_branch: str
    ecosystems: tuple[str, ...]
    pipelines: tuple[_Pipeline, ...]
    last_build_lag_ms: int
    pipeline_base: int
    pipeline_stride: int
    job_base: int
    job_stride: int


@dataclass(slots=True)
class _Org:
    id: str
    name: str
    created_ordinal: int
    projects: tuple[_Project, ...]
    users: tuple[str, ...]
    hour_cum_weekday: tuple[float, ...]
    hour_cum_weekend: tuple[float, ...]


def _org_name(seed: int, org_id: str) -> str:
    r = _rng("org-name", seed, org_id).random
    first = _ORG_WORDS_A[int(r() * len(_ORG_WORDS_A))]
    return f"{first}-{_ORG_WORDS_B[int(r() * len(_ORG_WORDS_B))]}"


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return tuple(out)


def _lognormal_quantiles(median: float, sigma: float) -> tuple[int, ...]:
    return tuple(max(1, round(median * math.exp(sigma * z))) for z in _Z)


def _ram(x: int) -> int:
    return round(100 * (x / 100) ** _RAM_EXP)


def _make_job(t: _J, dur_factor: float, util_shift: int, org_name: str) -> _Job:
    """One project's job from its template. A retired class gets its successor attached, which
    the rows dated on or after the end of life use (catalogue._SUCCESSORS)."""
    rc, executor, os_name, rate = _RESOURCE_CLASSES[t.rc]
    if t.net and executor != "runner":
        raise ValueError(f"job template {t.name}: network credits only on self-hosted runners")
    median = t.median_s * dur_factor
    durations = tuple(max(1, round(median * math.exp(t.sigma * z))) for z in _Z)

    def clamp(v: int) -> int:
        return max(1, min(100, v))

    cpu_med = clamp(t.cpu[0] + util_shift)
    ram_med = clamp(_ram(t.ram[0]) + util_shift // 2)
    job = _Job(
        name=t.name,
        rc=rc.format(org=org_name),
        os=os_name,
        executor=executor,
        par=str(t.par),
        credit_rate=rate * t.par,
        durations=durations,
        fail=t.fail,
        cpu_med=cpu_med,
        cpu_max=max(cpu_med, clamp(t.cpu[1] + util_shift)),
        ram_med=ram_med,
        ram_max=max(ram_med, min(_RAM_MAX_CAP, clamp(_ram(t.ram[1]) + util_shift // 2))),
        util_null=_UTIL_NULL[executor],
        cpu_pinned=_P_PINNED if t.cpu[0] >= _CPU_BOUND else 0.0,
        self_cancel=min(_SELF_CANCEL_MAX, median * rate * t.par / 60 / _SELF_CANCEL_CREDITS),
        dlc=200 if t.dlc else 0,  # DLC is a flat 200 credits per job run
        dlc_text="200" if t.dlc else "0",
        net_q=_lognormal_quantiles(t.net, 1.0) if t.net else (),
        storage_q=_lognormal_quantiles(t.storage or _STORAGE_MEDIAN, _STORAGE_SIGMA),
        ipranges=t.ipranges,
    )
    if t.rc in _SUCCESSORS:
        successor, eol = _SUCCESSORS[t.rc]
        job.successor = _make_job(t._replace(rc=successor), dur_factor, util_shift, org_name)
        job.successor_from = eol.toordinal()
    return job


@functools.lru_cache(maxsize=256)
def _org_model(seed: int, rows_per_day: int, org_id: str) -> _Org:
    _check_text(org_id, "org id")
    r = _rng("org", seed, org_id)
    rand = r.random
    name = _org_name(seed, org_id)
    created = date(2015, 1, 1).toordinal() + int(rand() * 6 * 365)
    tz = _TIME_ZONES[int(rand() * len(_TIME_ZONES))]
    weekday_w = [_LOCAL_HOUR_WEIGHT[(h + tz) % 24] for h in range(24)]
    weekend_w = [0.5 * w + 0.15 for w in weekday_w]  # weekend work is spread more evenly
    users = tuple(_uuid(r.getrandbits(128)) for _ in range(5 + int(rand() * 26)))

    # Choose 4-8 distinct archetypes (a partial Fisher-Yates shuffle on random()).
    order = list(range(len(_ARCHETYPES)))
    n_projects = 4 + int(rand() * 5)
    for i in range(n_projects):
        j = i + int(rand() * (len(order) - i))
        order[i], order[j] = order[j], order[i]
    chosen = order[:n_projects]

    raw_weights = [_ARCHETYPES[i].weight * (0.5 + 1.5 * rand()) for i in chosen]
    total_w = sum(raw_weights)
    scale = rows_per_day / 200.0

    # Schedules run regardless of weekday; what they don't use of rows_per_day goes to triggered
    # pipelines (kept at >= 70 % so small rows_per_day values still look like human activity).
    sched: list[list[int]] = []
    sched_rows = 0
    for a_index in chosen:
        counts = []
        for p in _ARCHETYPES[a_index].pipelines:
            n = int(p.per_day * scale + rand()) if p.kind == "schedule" else 0
            counts.append(n)
            sched_rows += n * sum(len(s) for w in p.workflows for s in w.stages)
        sched.append(counts)
    triggered_rows = max(rows_per_day - sched_rows, 0.7 * rows_per_day)
    peak = (1 + _ORG_JITTER) * (1 + _PROJECT_JITTER) * _SPIKE_HI / _SPIKE_NORM

    projects = []
    for pi, a_index in enumerate(chosen):
        a = _ARCHETYPES[a_index]
        pr = _rng("project", seed, org_id, pi)
        prand = pr.random
        pname = a.names[int(prand() * len(a.names))]
        p_created = created + int(prand() * max(1, date(2023, 12, 31).toordinal() - created))
        dur_factor = 0.75 + 0.6 * prand()
        util_shift = int(prand() * 13) - 6
        # One _Job per template, so a job shared by two workflows (e.g. "plan") stays identical.
        jobs: dict[_J, _Job] = {}
        for p in a.pipelines:
            for w in p.workflows:
                for stage in w.stages:
                    for t in stage:
                        if t not in jobs:
                            jobs[t] = _make_job(t, dur_factor, util_shift, name)

        pipelines = []
        pipe_stride = job_stride = 0
        for di, p in enumerate(a.pipelines):
            workflows = tuple(
                _Workflow(
                    w.name,
                    tuple(tuple(jobs[t] for t in stage) for stage in w.stages),
                    w.delay,
                    int(sum(max(t.median_s for t in stage) for stage in w.stages) * dur_factor),
                )
                for w in a.pipelines[di].workflows
            )
            rpr = sum(len(s) for w in workflows for s in w.stages)
            lam = (
                0.0
                if p.kind == "schedule"
                else (triggered_rows * raw_weights[pi] / total_w * p.share / rpr)
            )
            n_sched = sched[pi][di]
            offset = int(prand() * _DAY)
            pipelines.append(_Pipeline(p.kind, workflows, rpr, lam, n_sched, offset))
            # Numbering strides bound the runs a day can have, so numbers never collide.
            max_runs = n_sched + math.ceil(lam * peak) + 1
            pipe_stride += max_runs
            job_stride += max_runs * rpr
        pid = _uuid(pr.getrandbits(128))
        project_text = (org_id, name, _date_text(created), pid, pname, _date_text(p_created))
        projects.append(
            _Project(
                index=pi,
                id=pid,
                name=pname,
                created_ordinal=p_created,
                head=project_text,
                vcs=("github", f"https://github.com/{name}/{pname}"),
                default_branch="master" if prand() < 0.12 else "main",
                ecosystems=a.eco,
                pipelines=tuple(pipelines),
                last_build_lag_ms=1_000 + int(prand() * 3 * 3_600_000),
                pipeline_base=1 + int(prand() * 400),
                pipeline_stride=pipe_stride,
                job_base=1 + int(prand() * 5000),
                job_stride=job_stride,
            )
        )
    return _Org(
        id=org_id,
        name=name,
        created_ordinal=created,
        projects=tuple(projects),
        users=users,
        hour_cum_weekday=_cumulative(weekday_w),
        hour_cum_weekend=_cumulative(weekend_w),
    )


@functools.lru_cache(maxsize=4096)
def _branch_pool(
    seed: int, org_id: str, project_index: int, week: int, ecosystems: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Feature and dependabot branches alive during one ISO week: branches come and go."""
    r = _rng("branches", seed, org_id, project_index, week).random
    features = []
    for _ in range(4 + int(r() * 10)):
        topic = _TOPICS[int(r() * len(_TOPICS))]
        x = r()
        if x < 0.35:
            features.append(f"feature/{topic}")
        elif x < 0.55:
            features.append(f"fix/{topic}-{int(r() * 900) + 100}")
        elif x < 0.65:
            features.append(f"chore/{topic}")
        else:
            features.append(f"{_PEOPLE[int(r() * len(_PEOPLE))]}/{topic}")
    bots = []
    for _ in range(1 + int(r() * 3)):
        eco = ecosystems[int(r() * len(ecosystems))]
        pkgs = _DEP_PACKAGES[eco]
        pkg = pkgs[int(r() * len(pkgs))]
        ver = f"{int(r() * 12)}.{int(r() * 30)}.{int(r() * 10)}"
        bots.append(f"dependabot/{eco}/{pkg}-{ver}")
    return tuple(dict.fromkeys(features)), tuple(bots)


def _run_counts(org: _Org, seed: int, day: date) -> tuple[tuple[int, ...], ...]:
    """Workflow-run counts per project and pipeline definition for one day.

    Drawn from a stream of their own so row counts are known without simulating any jobs.
    """
    r = _rng("counts", seed, org.id, day.toordinal()).random
    ordinal = day.toordinal()
    weekend = day.weekday() >= 5
    org_factor = 1.0 + _ORG_JITTER * (2.0 * r() - 1.0)
    out = []
    for p in org.projects:
        factor = org_factor * (1.0 + _PROJECT_JITTER * (2.0 * r() - 1.0)) / _SPIKE_NORM
        if r() < _SPIKE_P:
            factor *= _SPIKE_LO + (_SPIKE_HI - _SPIKE_LO) * r()
        if weekend:
            factor *= _WEEKEND_FACTOR
        counts = []
        for pipe in p.pipelines:
            u = r()  # always drawn, so one inactive project doesn't reshuffle the others
            if ordinal < p.created_ordinal:
                counts.append(0)
            elif pipe.kind == "schedule":
                counts.append(pipe.scheduled_runs)
            else:
                counts.append(int(pipe.weekday_lam * factor + u))
        out.append(tuple(counts))
    return tuple(out)


def _aware_check(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value!r}")


def _rel_seconds(moment: datetime, midnight: datetime) -> float:
    return (moment - midnight).total_seconds()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticUsage:
    """Deterministic synthetic CircleCI usage: same (seed, org, day) -> same rows, byte for byte."""

    seed: int = 20240601
    rows_per_day: int = 200  # mean job-run rows per org per weekday; weekends noticeably lower

    def __post_init__(self) -> None:
        if self.rows_per_day < 0:
            raise ValueError("rows_per_day must be >= 0")

    def org_name(self, org_id: str) -> str:
        return _org_name(self.seed, org_id)

    def day_row_count(self, org_id: str, day: date) -> int:
        """Rows rows_for_day yields for a fully elapsed day (as_of None), computed WITHOUT
        generating them."""
        org = _org_model(self.seed, self.rows_per_day, org_id)
        if day.toordinal() < org.created_ordinal:
            return 0
        counts = _run_counts(org, self.seed, day)
        return sum(
            n * pipe.rows_per_run
            for project, per_pipe in zip(org.projects, counts, strict=True)
            for pipe, n in zip(project.pipelines, per_pipe, strict=True)
        )

    def rows_for_day(
        self, org_id: str, day: date, *, as_of: datetime | None = None
    ) -> Iterator[tuple[str, ...]]:
        """Encoded rows (48 strings each, in EXPORT_COLUMN_NAMES order) whose JOB_RUN_DATE is `day`.

        as_of (UTC-aware): the moment of the export. Workflows that had not started by as_of are
        left out; jobs still running at as_of are reported as status 'running' (no stop time, no
        seconds, no utilisation, zero credits); jobs of a started workflow that have not started
        yet are 'queued' (queued by then) or 'blocked', as never-ran rows. None means the day is
        long over.
        """
        if as_of is not None:
            _aware_check(as_of, "as_of")
        org = _org_model(self.seed, self.rows_per_day, org_id)
        return self._rows(org, day, as_of, 0, _DAY - 1)

    def rows_for_window(
        self, org_ids: Sequence[str], start: datetime, end: datetime, *, as_of: datetime
    ) -> Iterator[tuple[str, ...]]:
        """All rows of all orgs whose WORKFLOW_FIRST_JOB_STARTED_AT lies in [start, end] (both
        inclusive, UTC-aware), org by org, day by day in date order."""
        _aware_check(start, "start")
        _aware_check(end, "end")
        _aware_check(as_of, "as_of")
        if isinstance(org_ids, str):
            raise TypeError("org_ids must be a sequence of org ids, not a single string")
        return self._window(tuple(org_ids), start, end, as_of)

    # ----------------------------------------------------------------------------------------

    def rows_for_export(
        self, org_ids: Sequence[str], start: datetime, end: datetime, *, as_of: datetime
    ) -> Iterator[tuple[str, ...]]:
        """rows_for_window's rows in the order a real export file holds them: rows of all orgs,
        days and workflows mixed (circleci-data-facts.md §3.3: one real part holds all 3 orgs
        and all 9 days of its export), so each part of an export is a cross-section of it.

        The order is a deterministic shuffle of the seed and the request: the (org, day)
        streams are merged in a random order drawn in proportion to each one's size, then passed
        through a small shuffle buffer. Memory stays at one int per row plus the buffer, never
        the rows themselves, so a 2-million-row export still streams.
        """
        _aware_check(start, "start")
        _aware_check(end, "end")
        _aware_check(as_of, "as_of")
        if isinstance(org_ids, str):
            raise TypeError("org_ids must be a sequence of org ids, not a single string")
        return self._mixed(tuple(org_ids), start, end, as_of)

    def _mixed(
        self, org_ids: tuple[str, ...], start: datetime, end: datetime, as_of: datetime
    ) -> Iterator[tuple[str, ...]]:
        r = _rng("export-order", self.seed, org_ids, start.isoformat(), end.isoformat())
        rand = r.random
        streams = [iter(rows) for _, _, rows in self._streams(org_ids, start, end, as_of)]
        # One slot per row a stream may yield (a full day's count bounds a partial day's).
        slots = [
            i
            for i, (org_id, day, _) in enumerate(self._streams(org_ids, start, end, as_of))
            for _ in range(self.day_row_count(org_id, day))
        ]
        for i in range(len(slots) - 1, 0, -1):  # Fisher-Yates on random(), stable across versions
            j = int(rand() * (i + 1))
            slots[i], slots[j] = slots[j], slots[i]
        merged = chain(
            (row for i in slots if (row := next(streams[i], None)) is not None),
            chain.from_iterable(streams),  # nothing is left unless a bound was wrong
        )
        buffer: list[tuple[str, ...]] = []
        for row in merged:
            if len(buffer) < _MIX_BUFFER:
                buffer.append(row)
                continue
            k = int(rand() * _MIX_BUFFER)
            yield buffer[k]
            buffer[k] = row
        for i in range(len(buffer) - 1, 0, -1):
            j = int(rand() * (i + 1))
            buffer[i], buffer[j] = buffer[j], buffer[i]
        yield from buffer

    def _streams(
        self, org_ids: tuple[str, ...], start: datetime, end: datetime, as_of: datetime
    ) -> Iterator[tuple[str, date, Iterator[tuple[str, ...]]]]:
        """(org id, day, that day's rows in the window), org by org, day by day; lazy."""
        first = start.astimezone(UTC).date()
        last = end.astimezone(UTC).date()
        if start > end:
            return
        for org_id in org_ids:
            org = _org_model(self.seed, self.rows_per_day, org_id)
            day = first
            while day <= last:
                midnight = datetime.combine(day, time(0), tzinfo=UTC)
                # Workflow starts are whole seconds: keep t with start <= midnight + t <= end.
                lo = max(0, math.ceil(_rel_seconds(start, midnight)))
                hi = min(_DAY - 1, math.floor(_rel_seconds(end, midnight)))
                if lo <= hi:
                    yield org_id, day, self._rows(org, day, as_of, lo, hi)
                day += timedelta(days=1)

    def _window(
        self, org_ids: tuple[str, ...], start: datetime, end: datetime, as_of: datetime
    ) -> Iterator[tuple[str, ...]]:
        for _, _, rows in self._streams(org_ids, start, end, as_of):
            yield from rows

    def _rows(
        self, org: _Org, day: date, as_of: datetime | None, lo: int, hi: int
    ) -> Iterator[tuple[str, ...]]:
        ordinal = day.toordinal()
        if ordinal < org.created_ordinal:
            return
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        if as_of is None:
            as_rel = math.inf
            # A "long over" day is reported as if exported two days later.
            export_ms = 2 * _DAY_MS
        else:
            as_rel = _rel_seconds(as_of, midnight)
            if as_rel < lo:
                return
            delta = as_of - midnight
            export_ms = delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000

        counts = _run_counts(org, self.seed, day)
        # Timestamps are seconds from this day's midnight; a workflow may spill a day either way.
        dates = [f"{_date_text(ordinal + d)} " for d in (-1, 0, 1, 2)]  # index = day offset + 1
        run_date = _date_text(ordinal)
        hh, mmss = _HH, _MMSS_000
        week = day.isocalendar()
        week_key = week[0] * 100 + week[1]
        weekend = day.weekday() >= 5
        hour_cum = org.hour_cum_weekend if weekend else org.hour_cum_weekday
        hour_total = hour_cum[-1]
        users = org.users
        n_users = len(users)
        true_, false_ = TRUE_TEXT, FALSE_TEXT
        pct = small = _SMALL_TEXT

        def ts(t: int) -> str:
            d, s = divmod(t, _DAY)
            h, rem = divmod(s, 3600)
            return dates[d + 1] + hh[h] + mmss[rem]

        for project, per_pipe in zip(org.projects, counts, strict=True):
            if not any(per_pipe):
                continue
            r = _rng("day", self.seed, org.id, ordinal, project.index)
            rand = r.random
            bits = r.getrandbits
            features, bots = _branch_pool(
                self.seed, org.id, project.index, week_key, project.ecosystems
            )
            n_feat, n_bots = len(features), len(bots)
            default_branch = project.default_branch
            project_head = (
                *project.head,
                _ms_timestamp(ordinal, export_ms - project.last_build_lag_ms),
                *project.vcs,
            )

            # Place every run on the clock first, then number pipelines in time order.
            starts: list[tuple[int, int]] = []
            for pipe_index, (pipe, n) in enumerate(zip(project.pipelines, per_pipe, strict=True)):
                if pipe.kind == "schedule":
                    step = _DAY // max(n, 1)
                    for i in range(n):
                        lag = 30 + int(rand() * 15)  # scheduler latency + config compilation
                        starts.append(((pipe.schedule_offset + i * step + lag) % _DAY, pipe_index))
                else:
                    for _ in range(n):
                        h = bisect_right(hour_cum, rand() * hour_total)
                        starts.append((min(h, 23) * 3600 + int(rand() * 3600), pipe_index))
            starts.sort()

            day_index = ordinal - project.created_ordinal
            pipeline_number = project.pipeline_base + day_index * project.pipeline_stride
            job_number = project.job_base + day_index * project.job_stride

            for t_pipe, pipe_index in starts:
                pipe = project.pipelines[pipe_index]
                kind = pipe.kind
                pipeline_number += 1
                pipeline_id = _uuid(bits(128))
                x = rand()
                # Branch, trigger and failure/cancel propensities by what started the pipeline.
                if kind == "push":
                    if x < 0.55:
                        branch, fail_mult, p_cancel = default_branch, _FAIL_MAIN, _CANCEL_MAIN
                    elif x < 0.9:
                        branch = features[int(rand() * rand() * n_feat)]
                        fail_mult, p_cancel = _FAIL_FEATURE, _CANCEL_FEATURE
                    else:
                        branch = bots[int(rand() * n_bots)]
                        fail_mult, p_cancel = _FAIL_BOT, _CANCEL_BOT
                elif kind == "tag":
                    branch, fail_mult, p_cancel = N, 1.0, _CANCEL_OTHER
                else:
                    branch, fail_mult, p_cancel = default_branch, _FAIL_MAIN, _CANCEL_OTHER
                y = rand()
                if kind == "schedule":
                    source, unregistered, user = "scheduled_pipeline", true_, N
                elif branch.startswith("dependabot/"):
                    source, unregistered, user = "webhook", true_, N
                elif kind == "push" and y < 0.08:
                    source, unregistered, user = "api", false_, users[0]  # a CI service account
                elif y < 0.85:
                    u = int(rand() * rand() * n_users)  # a few people push most of the time
                    source, unregistered, user = "webhook", false_, users[u]
                else:
                    source, unregistered, user = "webhook", true_, N
                first_queue = _QUEUE[int(rand() * 64) >> 2]
                created_ms = (t_pipe - first_queue - 2 - int(rand() * 20)) * 1000 - int(
                    rand() * 1000
                )
                pipeline_head = (
                    branch,
                    pipeline_id,
                    _ms_timestamp(ordinal, created_ms),
                    str(pipeline_number),
                    unregistered,
                    source,
                    user,
                )

                for wf in pipe.workflows:
                    t0 = min(t_pipe + wf.delay + (int(rand() * 4) if wf.delay else 0), _DAY - 1)
                    workflow_id = _uuid(bits(128))
                    cancel_at = math.inf
                    if rand() < p_cancel:
                        cancel_at = t0 + 1 + int(rand() * wf.expected_s)

                    # --- simulate the whole workflow; as_of/window only affect reporting ---
                    plan: list[tuple[Any, ...]] = []
                    stage_ready = t0
                    blocked_at = -1
                    wf_stop = t0
                    wf_queued = t0 - first_queue
                    all_ok = True
                    first = True
                    for stage in wf.stages:
                        stage_end = stage_ready
                        stage_failed = False
                        for job in stage:
                            if job.successor is not None and ordinal >= job.successor_from:
                                job = job.successor
                            job_id = _uuid(bits(128))
                            number = job_number
                            job_number += 1
                            if blocked_at >= 0:
                                plan.append((job, job_id, 0, "blocked", blocked_at, number))
                                all_ok = False
                                continue
                            if first:
                                first = False
                                q, s = wf_queued, t0
                            else:
                                q = stage_ready + int(rand() * 3)
                                s = q + _QUEUE[int(rand() * 64)]
                                if s >= cancel_at:
                                    plan.append((job, job_id, 0, "canceled", cancel_at, number))
                                    all_ok = False
                                    continue
                                if rand() < _P_STUCK:
                                    x = rand()
                                    status = (
                                        "running"
                                        if x < _STUCK_RUNNING
                                        else "queued"
                                        if x < _STUCK_QUEUED
                                        else "blocked"
                                    )
                                    plan.append((job, job_id, 0, status, t0, number))
                                    all_ok = False
                                    stage_failed = True
                                    continue
                            dur = job.durations[int(rand() * _NQ)]
                            status = "success"
                            if cancel_at == math.inf and rand() < job.self_cancel:
                                cancel_at = s + 1 + int(dur * (0.4 + 0.6 * rand()))
                            if rand() < job.fail * fail_mult:
                                dur = max(1, int(dur * (0.1 + 0.9 * rand())))
                                status = "failed"
                                stage_failed = True
                            e = s + dur
                            if e > cancel_at:
                                e = int(cancel_at)
                                status = "canceled"
                            if status != "success":
                                all_ok = False
                            seconds = e - s
                            # Utilisation is sampled every 15 s, so shorter runs have none.
                            if seconds < 15 or rand() < job.util_null:
                                util: tuple[str, str, str, str] = (N, N, N, N)
                            else:
                                cm = job.cpu_med + int(rand() * 17) - 8
                                cm = 0 if cm < 0 else (100 if cm > 100 else cm)
                                if rand() < job.cpu_pinned:
                                    cm = 100
                                cx = job.cpu_max + int(rand() * 13) - 6
                                cx = cm if cx < cm else (100 if cx > 100 else cx)
                                rm = job.ram_med + int(rand() * 11) - 5
                                rm = 0 if rm < 0 else (100 if rm > 100 else rm)
                                rx = job.ram_max + int(rand() * 9) - 4
                                if rand() < _P_RAM_PEAK:
                                    rx = 95 + int(rand() * 3)
                                rx = rm if rx < rm else (100 if rx > 100 else rx)
                                util = (pct[cm], pct[cx], pct[rm], pct[rx])
                            compute = (seconds * job.credit_rate + 59) // 60
                            net = (
                                job.net_q[int(rand() * _NQ)]
                                if job.net_q and rand() < _P_NETWORK
                                else 0
                            )
                            storage = job.storage_q[int(rand() * _NQ)] if rand() < _P_STORAGE else 0
                            ipr = 1 + int(rand() * 12) if job.ipranges and rand() < 0.7 else 0
                            total = compute + job.dlc + storage + net + ipr
                            z = rand()
                            if z >= _RARE_OVERAGE:
                                credits = (
                                    str(compute), job.dlc_text, "0", str(storage), str(net),
                                    "0", "0", small[ipr], str(total),
                                )  # fmt: skip
                            else:
                                user_c = lease = overage = 0
                                if z < _RARE_USER:
                                    user_c = 25_000
                                elif z < _RARE_LEASE:
                                    lease = 1 + int(rand() * 60)
                                else:
                                    overage = 1 + int(rand() * 30)
                                total += user_c + lease + overage
                                credits = (
                                    str(compute), job.dlc_text, str(user_c), str(storage),
                                    str(net), small[lease], small[overage], small[ipr],
                                    str(total),
                                )  # fmt: skip
                            plan.append((job, job_id, 1, status, q, s, e, number, util, credits))
                            if e > stage_end:
                                stage_end = e
                            if e > wf_stop:
                                wf_stop = e
                        if stage_failed and blocked_at < 0:
                            blocked_at = stage_end
                        stage_ready = stage_end + 1 + int(rand() * 4)
                    if cancel_at < math.inf and any(p[3] == "canceled" for p in plan):
                        wf_stop = max(wf_stop, int(cancel_at))

                    # --- report ---
                    if t0 < lo or t0 > hi or t0 > as_rel:
                        continue
                    started_text = ts(t0)
                    finished = wf_stop <= as_rel
                    head = (
                        *project_head,
                        *pipeline_head,
                        workflow_id,
                        wf.name,
                        ts(wf_queued),
                        started_text,
                        ts(wf_stop) if finished else N,
                        true_ if finished and all_ok else false_,
                    )
                    for p in plan:
                        job = p[0]
                        if p[2]:
                            _, job_id, _, status, q, s, e, number, util, credits = p
                            if e <= as_rel:
                                yield head + (  # noqa: RUF005 - concatenation is ~40 % faster here
                                    job.name, str(number), job_id, run_date,
                                    ts(q), ts(s), ts(e), status,
                                    job.rc, job.os, job.executor, job.par, str(e - s),
                                    *util,
                                    *credits,
                                )  # fmt: skip
                                continue
                            if s <= as_rel:
                                yield head + (  # noqa: RUF005 - concatenation is ~40 % faster here
                                    job.name, str(number), job_id, run_date,
                                    ts(q), ts(s), N, "running",
                                    job.rc, job.os, job.executor, job.par, N,
                                    N, N, N, N,
                                    "0", "0", "0", "0", "0", "0", "0", "0", "0",
                                )  # fmt: skip
                                continue
                            status = "queued" if q <= as_rel else "blocked"
                            number = p[7]
                        else:
                            status = p[3] if p[4] <= as_rel else "blocked"
                            number = p[5]
                        if status == "queued":
                            # A queued job keeps its name, number and parallelism, and has no
                            # other job details yet (circleci-data-facts.md §3.2 row 30a).
                            yield head + (  # noqa: RUF005 - concatenation is ~40 % faster here
                                job.name, str(number), p[1], run_date, N, started_text, N, status,
                                N, N, N, job.par, N, N, N, N, N,
                                "0", "0", "0", "0", "0", "0", "0", "0", "0",
                            )  # fmt: skip
                            continue
                        # Never ran (stuck `running` rows look the same): no job details, no
                        # times but JOB_RUN_STARTED_AT, which the real file fills with the
                        # workflow's start.
                        yield head + (  # noqa: RUF005 - concatenation is ~40 % faster here
                            N, N, p[1], run_date, N, started_text, N, status,
                            N, N, N, N, N, N, N, N, N,
                            "0", "0", "0", "0", "0", "0", "0", "0", "0",
                        )  # fmt: skip
