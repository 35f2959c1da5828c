"""Large synthetic exports for the benchmark, written once and cached under bench/.cache/."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from usage_assets.simulator.parts import write_parts
from usage_assets.simulator.synthetic import SyntheticUsage

CACHE = Path(__file__).resolve().parent / ".cache"
ORG_ID = "b9291e0d-a11e-41fb-8517-c545388b5953"
FIRST_DAY = date(2026, 10, 1)
DAYS = 31
PARTS = 8


def export_parts(target_rows: int) -> list[Path]:
    """About `target_rows` rows of one org over 31 days, split into 8 gzip CSV parts."""
    # Weekends run at ~30 %, so the weekday mean that yields the target is found by counting.
    rows_per_day = max(1, round(target_rows / (DAYS * 0.8)))
    usage = SyntheticUsage(rows_per_day=rows_per_day)
    days = [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]
    total = sum(usage.day_row_count(ORG_ID, day) for day in days)
    folder = CACHE / f"{rows_per_day}_per_day"
    done = folder / "COMPLETE"
    if not done.exists():
        for old in folder.glob("*.csv.gz"):
            old.unlink()
        start = datetime.combine(days[0], time(0), tzinfo=UTC)
        end = datetime.combine(days[-1], time(0), tzinfo=UTC) + timedelta(days=1, seconds=-1)
        rows = usage.rows_for_window((ORG_ID,), start, end, as_of=end + timedelta(days=2))
        write_parts(rows, folder, rows_per_part=math.ceil(total / PARTS))
        done.write_text(str(total))
    return sorted(folder.glob("*.csv.gz"))
