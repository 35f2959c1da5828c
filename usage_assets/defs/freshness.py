"""Freshness: Dagster says when yesterday is missing, from one deadline (`USAGE_FRESHNESS_DEADLINE_CRON`).

Two mechanisms, because Dagster's new `FreshnessPolicy` is not partition-aware: it looks at the
newest materialization of *any* partition, so a backfill of an old day would make `job_runs`
look fresh while yesterday is missing (dagster-io/dagster discussion 34023).

* `job_runs` gets `build_time_partition_freshness_checks`: once the deadline has passed, the
  check passes only if the partition of the day before (yesterday) has been materialized. The
  check is not blocking: a backfill of older days must not be held back because yesterday is
  late. It is declared on `job_runs`, so the sensor's download runs, which select `job_runs` and
  its checks, evaluate it right after each load; `build_sensor_for_freshness_checks` evaluates it
  in between (once it could have gone stale), so nobody has to run a load to learn yesterday is
  missing.
* The report and the forecast are unpartitioned, so `FreshnessPolicy.cron` means what it says
  for them: rebuilt in the 24 h before each deadline (every load rebuilds them). The freshness
  daemon, on by default in 1.13, evaluates it.

Both builders are marked superseded in 1.13 in favour of `FreshnessPolicy`; the check is kept on
purpose for the reason above (the warnings are silenced, targeted, in `defs/__init__.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from usage_assets.config import current_config

# Every freshness rule here is evaluated in UTC, like the partitions and the schedules.
FRESHNESS_TIMEZONE = "UTC"
# The report and forecast must have been rebuilt within the day before each deadline. 24 h is
# also the most Dagster allows for a once-a-day cron (lower_bound_delta <= the cron's interval).
INSIGHTS_FRESHNESS_LOWER_BOUND = timedelta(hours=24)
FRESHNESS_SENSOR_NAME = "job_runs_freshness_sensor"
# The sensor only launches a run when a check has never run or could have gone stale since it
# last passed, so a tick is a few event-log reads: every 5 minutes is cheap and prompt enough for
# a once-a-day deadline.
FRESHNESS_SENSOR_INTERVAL_SECONDS = 300
# The check's name, as Dagster's builder spells it.
FRESHNESS_CHECK_NAME = "freshness_check"

DEADLINE_CRON = current_config().freshness_deadline_cron


def insights_freshness_policy(deadline_cron: str = DEADLINE_CRON) -> dg.FreshnessPolicy:
    """Rebuilt at least once in the 24 h before each deadline."""
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline_cron,
        lower_bound_delta=INSIGHTS_FRESHNESS_LOWER_BOUND,
        timezone=FRESHNESS_TIMEZONE,
    )


def build_partition_freshness_checks(
    assets: Sequence[dg.AssetsDefinition], deadline_cron: str = DEADLINE_CRON
) -> Sequence[dg.AssetChecksDefinition]:
    """After each deadline, the partition of the day before it must be materialized.

    ERROR, since a missing day is the pipeline failing its users; not blocking (see the module
    docstring)."""
    return dg.build_time_partition_freshness_checks(
        assets=list(assets),
        deadline_cron=deadline_cron,
        timezone=FRESHNESS_TIMEZONE,
        severity=dg.AssetCheckSeverity.ERROR,
        blocking=False,
    )


def build_freshness_sensor(checks: Sequence[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    """Evaluates `checks` between loads; on by default, like the project's other automation."""
    return dg.build_sensor_for_freshness_checks(
        freshness_checks=list(checks),
        minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_SECONDS,
        name=FRESHNESS_SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
