"""One converter from a plain rule result (`ingest.job_runs_rules.RuleResult`, which the core
modules return without knowing Dagster) to the `AssetCheckResult` the UI shows."""

from __future__ import annotations

from typing import Any

import dagster as dg

from usage_assets.ingest.job_runs_rules import RuleResult


def check_result(
    asset_key: dg.AssetKey,
    check_name: str,
    result: RuleResult,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=result.passed,
        severity=severity,
        description=result.description,
        metadata={key: _metadata_value(value) for key, value in result.metadata.items()},
    )


def _metadata_value(value: object) -> Any:
    """Numbers, text and Dagster metadata values as they are; anything else as its text."""
    if isinstance(value, (int, float, str, dg.MetadataValue)):
        return value
    return str(value)
