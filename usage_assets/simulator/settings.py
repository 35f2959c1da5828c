"""Settings and fault switches of the embedded Usage API simulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from usage_assets.circleci.timestamps import utc_now
from usage_assets.circleci.window import WindowRules
from usage_assets.simulator.parts import FILE_DIALECTS, SchemaDrift

# The spec's own example org id; the demo and the dev UI use it with the demo token.
DEFAULT_ORG_ID = "b9291e0d-a11e-41fb-8517-c545388b5953"
DEFAULT_SHARED_ORG_ID = "6f0b5c1e-3c8d-4b8e-9a53-2f1e7d9c4a10"
# Not a secret: it only opens the simulator, which holds synthetic data.
DEFAULT_TOKEN = "simulated-circleci-token"


@dataclass
class Faults:
    """Misbehaviour to inject, for reliability tests. Rates are shares in [0, 1], drawn from a
    seeded generator so a test run is repeatable. Changing them affects jobs created afterwards
    (job-level faults) or requests made afterwards (request-level faults)."""

    job_failure_rate: float = 0.0  # job ends `failed` with an error_reason
    empty_export_rate: float = 0.0  # job completes with no rows (download_urls null)
    api_error_rate: float = 0.0  # share of API requests answered 500
    download_error_rate: float = 0.0  # share of part downloads answered 500
    corrupt_part_rate: float = 0.0  # share of parts stored with flipped bytes
    truncated_part_rate: float = 0.0  # share of parts stored cut in half
    download_bytes_per_second: int | None = None  # throttle every download (a slow link)
    # A completed job lists no links until this long after it completed (CircleCI's support
    # article: links "not immediately available").
    links_listed_after_seconds: float = 0.0
    # The first GET that lists a job's links leaves out its last N parts (links listed bit by
    # bit); later GETs list them all.
    first_listing_omits_parts: int = 0
    schema_drift: SchemaDrift = field(default_factory=SchemaDrift)
    # How part files are written: "2024" (unquoted, `\\N` nulls) or "2026" (every field quoted,
    # "" for null); see simulator.parts. Not a misbehaviour, but a file variation a client must
    # read, switched like schema_drift.
    file_dialect: str = "2024"

    def __post_init__(self) -> None:
        if self.file_dialect not in FILE_DIALECTS:
            raise ValueError(f"file_dialect must be one of {FILE_DIALECTS}")


class DownloadGate:
    """Holds every part download (its headers sent, no bytes yet) until `open` is called, and
    notes which export jobs are waiting: lets a test start the loads of several exports at the
    same moment, whatever the order their runs got going in. Not a CircleCI behaviour."""

    # Below the client's 60 s read timeout: a gate never opened lets downloads go on by
    # themselves rather than fail them.
    MAX_HOLD_SECONDS = 50.0

    def __init__(self) -> None:
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[str] = set()

    def hold(self, job_id: str) -> None:
        if self._opened.is_set():
            return
        with self._lock:
            self._waiting.add(job_id)
        self._opened.wait(self.MAX_HOLD_SECONDS)

    def waiting(self) -> frozenset[str]:
        """The export jobs a download has been held for so far."""
        with self._lock:
            return frozenset(self._waiting)

    def open(self) -> None:
        self._opened.set()


@dataclass
class SimulatorSettings:
    """How the simulated API behaves. Defaults follow the real API where it is known."""

    tokens: frozenset[str] = frozenset({DEFAULT_TOKEN})
    org_ids: frozenset[str] = frozenset({DEFAULT_ORG_ID, DEFAULT_SHARED_ORG_ID})
    seed: int = 20240601
    rows_per_day: int = 200
    rows_per_part: int = 2_000
    # created -> processing -> completed takes this long (the real API: seconds to minutes).
    processing_time: timedelta = timedelta(seconds=3)
    # How long GETs still report `created` after the POST. The POST itself always answers
    # `created` (the create route hard-codes it), but CircleCI's own export script polls only
    # while `processing` and gives up on any other state, so the real service must move a job to
    # `processing` at once: 0 by default. A positive value keeps clients' `created` handling tested.
    created_phase: timedelta = timedelta(0)
    url_lifetime: timedelta = timedelta(hours=36)
    post_quota: int = 10
    post_quota_window: timedelta = timedelta(hours=24)
    get_limit: int = 60
    get_limit_window: timedelta = timedelta(minutes=1)
    window_rules: WindowRules = field(default_factory=WindowRules)
    clock: Callable[[], datetime] = utc_now
    faults: Faults = field(default_factory=Faults)
    download_gate: DownloadGate | None = None  # set by a test to line downloads up
