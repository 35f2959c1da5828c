"""When the insights roll-ups refresh outside the sensor's runs.

The sensor's `download_and_load_usage` runs rebuild the roll-ups themselves. Any other run that
updates their inputs (a manual reload of `daily_usage` from the UI, say) leaves them stale; the
automation condition and its sensor refresh them then.
"""

import dagster as dg

from usage_assets.defs.constants import INSIGHTS_GROUP
from usage_assets.insights.common import SCHEMA

# Refresh after any run that updated an input without also refreshing these (a run that did, such
# as the sensor's, is ignored by any_deps_updated). Unlike `eager()`, it does not wait for every
# upstream partition to exist: 13 months of daily partitions are never all loaded.
ROLLUP_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("inputs updated by another run")


# Only the roll-ups carry ROLLUP_AUTOMATION; the daily tables in the group have no condition, so
# the sensor never requests them.
insights_automation_sensor = dg.AutomationConditionSensorDefinition(
    "insights_automation_sensor",
    target=dg.AssetSelection.groups(INSIGHTS_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description=f"Refreshes the {SCHEMA} roll-ups and report after a run that updated their inputs "
    "without them (the sensor's download runs refresh them themselves).",
)
