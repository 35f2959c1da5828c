"""The Dagster assets of the code location."""

import warnings

import dagster as dg

# The assets pass `backfill_policy` on purpose: it is what makes a UI backfill spend one POST per
# 31 days (multi-run) and load each download in one run (single-run). Dagster marks the parameter
# beta and warns once per decorator at import, which every `dagster dev` and `make demo` would
# print first. Only that one warning is silenced; any other BetaWarning still shows.
BACKFILL_POLICY_BETA_MESSAGE = (
    r"Parameter `backfill_policy` of function `asset` is currently in beta"
)
warnings.filterwarnings("ignore", message=BACKFILL_POLICY_BETA_MESSAGE, category=dg.BetaWarning)

# The partition-aware freshness check and its sensor are what "yesterday is missing" needs (the
# new FreshnessPolicy is not partition-aware: see usage_assets.defs.freshness). Dagster 1.13 marks
# both builders superseded and warns at every import; only those two warnings are silenced.
FRESHNESS_CHECKS_SUPERSEDED_MESSAGE = (
    r"Function `build_(time_partition_freshness_checks|sensor_for_freshness_checks)` is superseded"
)
warnings.filterwarnings(
    "ignore", message=FRESHNESS_CHECKS_SUPERSEDED_MESSAGE, category=dg.SupersessionWarning
)
