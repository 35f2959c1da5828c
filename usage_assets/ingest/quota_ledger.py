"""A persistent, multi-process ledger of create-export POSTs, per API base URL and org.

CircleCI allows about ten create-export POSTs per org per day and offers no way to ask how many are
left, so we count our own. The ledger is a small SQLite file beside the raw data (never the DuckDB
warehouse, which allows one process at a time). Reserving a slot takes SQLite's write lock
(`BEGIN IMMEDIATE`), so runs, the sensor and a second `dagster dev` can all reserve at once and never
hand out more slots than the quota. Every attempt stays recorded with its outcome; a slot is spent
from the moment it is reserved, because a POST that timed out may still have created a job.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS post_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_url TEXT NOT NULL,
    org_id TEXT NOT NULL,
    reserved_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    export_job_id TEXT,
    window_start TEXT,
    window_end TEXT,
    run_id TEXT,
    detail TEXT,
    shared_org_ids TEXT
);
CREATE INDEX IF NOT EXISTS post_attempts_by_org ON post_attempts (api_url, org_id, reserved_at);
CREATE TABLE IF NOT EXISTS rate_limit_blocks (
    api_url TEXT NOT NULL,
    org_id TEXT NOT NULL,
    blocked_until TEXT NOT NULL,
    PRIMARY KEY (api_url, org_id)
);
"""


class PostOutcome(StrEnum):
    RESERVED = "reserved"  # slot taken, POST not answered yet (or the process died)
    CREATED = "created"
    REFUSED = "refused"  # 4xx other than 429: the request reached the API and was refused
    RATE_LIMITED = "rate_limited"  # 429: the API says the quota is spent
    SERVER_ERROR = "server_error"
    NO_ANSWER = "no_answer"  # sent, then a timeout or dropped connection: outcome unknown
    NOT_SENT = "not_sent"  # never left this machine: the slot is given back
    # A 2xx answer the client could not read: CircleCI accepted the POST, so a job probably exists
    # although its id is unknown.
    UNREADABLE_ANSWER = "unreadable_answer"


class QuotaExhaustedError(Exception):
    """No POST slot is free; nothing was sent."""

    def __init__(self, message: str, next_slot_at: datetime) -> None:
        super().__init__(message)
        self.next_slot_at = next_slot_at


@dataclass(frozen=True)
class QuotaStatus:
    used: int
    limit: int
    window: timedelta
    next_slot_at: datetime | None  # None when a slot is free now
    blocked_until: datetime | None  # set after a 429, until the window frees

    @property
    def left(self) -> int:
        return 0 if self.blocked_until else max(self.limit - self.used, 0)


@dataclass(frozen=True)
class CreatedExport:
    """An export job a recorded POST created."""

    export_job_id: str
    reserved_at: datetime


@dataclass(frozen=True)
class Reservation:
    attempt_id: int
    reserved_at: datetime


class PostQuotaLedger:
    """Reserve, record and report POST slots for one (API base URL, org)."""

    def __init__(
        self,
        path: Path,
        *,
        api_url: str,
        org_id: str,
        limit: int,
        window: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if limit < 1:
            raise ValueError(f"the POST quota must be at least 1, got {limit}")
        if window <= timedelta(0):
            raise ValueError(f"the POST quota window must be positive, got {window}")
        self.path = path
        self.api_url = api_url.rstrip("/")
        self.org_id = org_id
        self.limit = limit
        self.window = window
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            _add_missing_columns(conn)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: we issue BEGIN ourselves, so the write lock is taken up front.
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            yield conn
        finally:
            conn.close()

    def reserve(
        self,
        *,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        run_id: str | None = None,
        shared_org_ids: Sequence[str] = (),
    ) -> Reservation:
        """Take a slot atomically across processes, or raise QuotaExhaustedError (nothing sent)."""
        now = self._now()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                status = self._status(conn, now)
                if status.left == 0:
                    conn.execute("ROLLBACK")
                    next_slot = status.blocked_until or status.next_slot_at or now
                    raise QuotaExhaustedError(
                        f"CircleCI POST quota exhausted for org {self.org_id} at {self.api_url}: "
                        f"{status.used} of {self.limit} used in the last {_hours(self.window)} h; "
                        f"next slot at {next_slot.isoformat(timespec='seconds')}",
                        next_slot,
                    )
                cursor = conn.execute(
                    "INSERT INTO post_attempts (api_url, org_id, reserved_at, outcome, window_start,"
                    " window_end, run_id, shared_org_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.api_url,
                        self.org_id,
                        now.isoformat(),
                        PostOutcome.RESERVED.value,
                        window_start.astimezone(UTC).isoformat() if window_start else None,
                        window_end.astimezone(UTC).isoformat() if window_end else None,
                        run_id,
                        _org_list(shared_org_ids),
                    ),
                )
                conn.execute("COMMIT")
            except QuotaExhaustedError:
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return Reservation(attempt_id=int(cursor.lastrowid or 0), reserved_at=now)

    def record(
        self,
        reservation: Reservation,
        outcome: PostOutcome,
        *,
        export_job_id: str | None = None,
        detail: str | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        """Store how a reserved POST ended. A 429 also blocks the org until the window frees."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE post_attempts SET outcome = ?, export_job_id = ?, detail = ? WHERE id = ?",
                (outcome.value, export_job_id, detail, reservation.attempt_id),
            )
            if outcome is PostOutcome.RATE_LIMITED:
                until = self._now() + (retry_after if retry_after is not None else self.window)
                conn.execute(
                    "INSERT INTO rate_limit_blocks (api_url, org_id, blocked_until) VALUES (?, ?, ?)"
                    " ON CONFLICT (api_url, org_id) DO UPDATE SET blocked_until = excluded.blocked_until",
                    (self.api_url, self.org_id, until.isoformat()),
                )
            conn.execute("COMMIT")

    def created_exports(
        self,
        *,
        window_start: datetime,
        window_end: datetime,
        shared_org_ids: Sequence[str],
        since: datetime,
    ) -> list[CreatedExport]:
        """Exports created for exactly this window and these shared orgs since `since`, newest
        first: a run about to POST the same request can reuse one still pending."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT export_job_id, reserved_at FROM post_attempts"
                " WHERE api_url = ? AND org_id = ? AND outcome = ? AND export_job_id IS NOT NULL"
                " AND window_start = ? AND window_end = ? AND coalesce(shared_org_ids, '') = ?"
                " AND reserved_at > ? ORDER BY reserved_at DESC",
                (
                    self.api_url,
                    self.org_id,
                    PostOutcome.CREATED.value,
                    window_start.astimezone(UTC).isoformat(),
                    window_end.astimezone(UTC).isoformat(),
                    _org_list(shared_org_ids),
                    since.astimezone(UTC).isoformat(),
                ),
            ).fetchall()
        return [CreatedExport(job_id, datetime.fromisoformat(at)) for job_id, at in rows]

    def status(self) -> QuotaStatus:
        with self._connect() as conn:
            return self._status(conn, self._now())

    def attempts(self) -> list[dict[str, str | None]]:
        """Every recorded attempt for this API and org, oldest first (for reports and tests)."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT reserved_at, outcome, export_job_id, window_start, window_end, run_id, detail"
                " FROM post_attempts WHERE api_url = ? AND org_id = ? ORDER BY id",
                (self.api_url, self.org_id),
            ).fetchall()
        return [dict(row) for row in rows]

    def _now(self) -> datetime:
        # Stored as ISO text and compared as text, so every timestamp must be in the same zone.
        return self._clock().astimezone(UTC)

    def _status(self, conn: sqlite3.Connection, now: datetime) -> QuotaStatus:
        since = now - self.window
        times = [
            datetime.fromisoformat(value)
            for (value,) in conn.execute(
                "SELECT reserved_at FROM post_attempts WHERE api_url = ? AND org_id = ?"
                " AND reserved_at > ? AND outcome <> ? ORDER BY reserved_at",
                (self.api_url, self.org_id, since.isoformat(), PostOutcome.NOT_SENT.value),
            )
        ]
        blocked_row = conn.execute(
            "SELECT blocked_until FROM rate_limit_blocks WHERE api_url = ? AND org_id = ?",
            (self.api_url, self.org_id),
        ).fetchone()
        blocked_until = datetime.fromisoformat(blocked_row[0]) if blocked_row else None
        if blocked_until is not None and blocked_until <= now:
            blocked_until = None
        next_slot = (
            times[len(times) - self.limit] + self.window if len(times) >= self.limit else None
        )
        return QuotaStatus(
            used=len(times),
            limit=self.limit,
            window=self.window,
            next_slot_at=next_slot,
            blocked_until=blocked_until,
        )


def _org_list(org_ids: Sequence[str]) -> str:
    """Shared org ids as stored: order does not change the request, so sorted."""
    return ",".join(sorted(org_ids))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Ledgers written before `shared_org_ids` existed get the column (nullable: unknown)."""
    conn.execute("BEGIN IMMEDIATE")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(post_attempts)")}
    if "shared_org_ids" not in columns:
        conn.execute("ALTER TABLE post_attempts ADD COLUMN shared_org_ids TEXT")
    conn.execute("COMMIT")


def _hours(window: timedelta) -> str:
    return f"{window / timedelta(hours=1):g}"
