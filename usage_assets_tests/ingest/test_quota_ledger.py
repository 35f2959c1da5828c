"""The POST quota ledger: atomic across processes, persistent, honest about every attempt.

Every test runs against both stores: a SQLite file and a PostgreSQL database of its own."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from usage_assets.ingest.quota_ledger import (
    QUOTA_LEDGER_URL_ENV,
    CopySummary,
    PostOutcome,
    PostQuotaLedger,
    QuotaExhaustedError,
    copy_ledger,
    main,
    redacted,
)
from usage_assets_tests.helpers import FakeClock

API = "http://127.0.0.1:9/api/v2"
ORG = "b9291e0d-a11e-41fb-8517-c545388b5953"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the ledger lives: a SQLite file, or a PostgreSQL URL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return tmp_path / "q.sqlite"


def ledger(path: Path | str, clock: FakeClock, limit: int = 3, **kwargs: object) -> PostQuotaLedger:
    options = {
        "api_url": API,
        "org_id": ORG,
        "limit": limit,
        "window": timedelta(hours=24),
        "clock": clock,
    }
    options.update(kwargs)
    return PostQuotaLedger(path, **options)  # type: ignore[arg-type]


def test_reserves_up_to_the_limit_then_names_the_next_slot(
    location: Path | str, clock: FakeClock
) -> None:
    book = ledger(location, clock)
    first = clock.now
    for _ in range(3):
        book.reserve()
        clock.advance(timedelta(hours=1))
    with pytest.raises(QuotaExhaustedError, match="quota exhausted") as caught:
        book.reserve()
    assert caught.value.next_slot_at == first + timedelta(hours=24)
    assert "next slot at 2026-11-21T12:00:00+00:00" in str(caught.value)
    status = book.status()
    assert (status.used, status.left) == (3, 0)
    clock.advance(timedelta(hours=21, seconds=1))
    book.reserve()  # the first slot has aged out


def test_state_survives_a_restart(location: Path | str, clock: FakeClock) -> None:
    ledger(location, clock).reserve()
    again = ledger(location, clock)
    assert again.status().used == 1


def test_quota_is_kept_per_api_and_org(location: Path | str, clock: FakeClock) -> None:
    path = location
    real = ledger(path, clock, limit=1, api_url="https://circleci.com/api/v2")
    real.reserve()
    simulated = ledger(path, clock, limit=1)
    other_org = ledger(path, clock, limit=1, org_id="00000000-0000-4000-8000-000000000000")
    simulated.reserve()
    other_org.reserve()
    with pytest.raises(QuotaExhaustedError):
        real.reserve()


def test_every_attempt_is_recorded_with_its_outcome(location: Path | str, clock: FakeClock) -> None:
    book = ledger(location, clock, limit=5)
    ok = book.reserve(run_id="r1")
    book.record(ok, PostOutcome.CREATED, export_job_id="job-1")
    lost = book.reserve(run_id="r2")
    book.record(lost, PostOutcome.NO_ANSWER, detail="ReadTimeout")
    book.reserve(run_id="r3")  # the process died before recording
    outcomes = [(a["outcome"], a["export_job_id"], a["run_id"]) for a in book.attempts()]
    assert outcomes == [
        ("created", "job-1", "r1"),
        ("no_answer", None, "r2"),
        ("reserved", None, "r3"),
    ]
    assert book.status().used == 3  # failures and unknowns spend slots too


def test_a_429_blocks_until_the_window_frees(location: Path | str, clock: FakeClock) -> None:
    book = ledger(location, clock, limit=10)
    attempt = book.reserve()
    book.record(attempt, PostOutcome.RATE_LIMITED, retry_after=timedelta(hours=5))
    status = book.status()
    assert status.left == 0 and status.blocked_until == clock.now + timedelta(hours=5)
    with pytest.raises(QuotaExhaustedError) as caught:
        book.reserve()
    assert caught.value.next_slot_at == clock.now + timedelta(hours=5)
    clock.advance(timedelta(hours=5, seconds=1))
    book.reserve()


@pytest.mark.parametrize(("limit", "window"), [(0, timedelta(hours=1)), (1, timedelta(0))])
def test_bad_settings_are_refused(
    location: Path | str, clock: FakeClock, limit: int, window: timedelta
) -> None:
    with pytest.raises(ValueError, match="POST quota"):
        ledger(location, clock, limit=limit, window=window)


def _race(
    path: str, start: multiprocessing.synchronize.Event, results: multiprocessing.Queue[str]
) -> None:
    book = PostQuotaLedger(path, api_url=API, org_id=ORG, limit=10, window=timedelta(hours=24))
    start.wait()
    try:
        book.reserve()
        results.put("reserved")
    except QuotaExhaustedError:
        results.put("refused")


def test_twenty_processes_racing_never_exceed_the_quota(location: Path | str) -> None:
    path = str(location)
    PostQuotaLedger(path, api_url=API, org_id=ORG, limit=10, window=timedelta(hours=24))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    workers = [ctx.Process(target=_race, args=(path, start, results)) for _ in range(20)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes.count("reserved") == 10
    assert outcomes.count("refused") == 10


def test_naive_clock_values_are_normalised(location: Path | str) -> None:
    clock = FakeClock(datetime(2026, 11, 20, 12, tzinfo=UTC))
    book = ledger(location, clock)
    assert book.reserve().reserved_at.tzinfo is not None


@pytest.mark.parametrize(
    ("outcome", "used"),
    [
        (PostOutcome.NOT_SENT, 0),  # never left the machine: the slot is given back
        (PostOutcome.NO_ANSWER, 1),  # sent, no answer: the job may exist, the slot stays spent
        (PostOutcome.REFUSED, 1),
    ],
)
def test_only_a_post_that_was_never_sent_gives_its_slot_back(
    location: Path | str, clock: FakeClock, outcome: PostOutcome, used: int
) -> None:
    book = ledger(location, clock, limit=1)
    book.record(book.reserve(), outcome, detail="test")
    assert book.status().used == used
    if used == 0:
        book.reserve()  # the one slot is free again
    else:
        with pytest.raises(QuotaExhaustedError):
            book.reserve()
    assert book.attempts()[0]["outcome"] == outcome.value


def test_times_and_reusable_exports_read_back_the_same_from_either_store(
    location: Path | str, clock: FakeClock
) -> None:
    book = ledger(location, clock)
    start, end = datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)
    made = book.reserve(window_start=start, window_end=end, shared_org_ids=["b", "a"])
    book.record(made, PostOutcome.CREATED, export_job_id="job-1")
    assert book.attempts()[0]["reserved_at"] == "2026-11-20T12:00:00+00:00"
    assert book.attempts()[0]["window_start"] == "2026-11-18T00:00:00+00:00"
    found = book.created_exports(
        window_start=start, window_end=end, shared_org_ids=["a", "b"], since=start
    )
    assert [(e.export_job_id, e.reserved_at) for e in found] == [("job-1", clock.now)]
    assert not book.created_exports(
        window_start=start, window_end=end, shared_org_ids=["a"], since=start
    )


def test_a_ledger_url_password_is_never_shown() -> None:
    assert (
        redacted("postgresql://usage:s3cret@db.internal:5433/ledger")
        == "postgresql://usage:***@db.internal:5433/ledger"
    )
    assert redacted(Path("/data/post_quota.sqlite")) == "/data/post_quota.sqlite"


def test_a_sqlite_history_is_copied_into_postgres_once(
    tmp_path: Path,
    postgres_url: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = ledger(tmp_path / "q.sqlite", clock, limit=5)
    other_org = ledger(tmp_path / "q.sqlite", clock, limit=5, org_id="00000000-0000-4000-8000-0000")
    old.record(old.reserve(run_id="r1"), PostOutcome.CREATED, export_job_id="job-1")
    clock.advance(timedelta(minutes=1))
    unanswered = old.reserve(run_id="r2")  # still unanswered when the history is copied
    other_org.record(other_org.reserve(), PostOutcome.RATE_LIMITED, retry_after=timedelta(hours=2))
    monkeypatch.setenv(QUOTA_LEDGER_URL_ENV, postgres_url)

    assert main([str(tmp_path / "q.sqlite")]) == 0
    assert "3 attempts added, 0 already there" in capsys.readouterr().out
    new, new_other = (
        ledger(postgres_url, clock, limit=5),
        ledger(postgres_url, clock, limit=5, org_id="00000000-0000-4000-8000-0000"),
    )
    assert new.attempts() == old.attempts()
    assert new_other.status() == other_org.status()  # the 429 block came along
    assert new_other.status().blocked_until == clock.now + timedelta(hours=2)

    old.record(unanswered, PostOutcome.NO_ANSWER, detail="ReadTimeout")
    assert copy_ledger(tmp_path / "q.sqlite", postgres_url) == CopySummary(0, 3, 1)
    assert new.attempts() == old.attempts()  # nothing doubled; the late outcome arrived
    assert [a["outcome"] for a in new.attempts()] == ["created", "no_answer"]
    assert new.status().used == 2
