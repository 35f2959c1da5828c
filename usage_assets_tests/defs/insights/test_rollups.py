"""The roll-up registry and the specs describe the same tables and checks."""

from __future__ import annotations

import dagster as dg

from usage_assets.defs.insights.rollups import ROLLUPS
from usage_assets.defs.insights.specs import ROLLUP_CHECKS, ROLLUP_SPECS


def test_every_rollup_spec_has_one_registry_entry_in_dependency_order() -> None:
    keys = [rollup.key for rollup in ROLLUPS]
    assert keys == [spec.key for spec in ROLLUP_SPECS]
    position = {key: index for index, key in enumerate(keys)}
    for spec in ROLLUP_SPECS:
        for dep in spec.deps:
            if dep.asset_key in position:
                assert position[dep.asset_key] < position[spec.key], (spec.key, dep.asset_key)


def test_every_registry_check_is_declared() -> None:
    declared = {dg.AssetCheckKey(spec.asset_key, spec.name) for spec in ROLLUP_CHECKS}
    assert {dg.AssetCheckKey(r.key, r.check_name) for r in ROLLUPS} == declared
