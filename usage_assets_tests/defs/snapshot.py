"""A text snapshot of the code location's definitions, for `test_definitions_match_the_snapshot`.

It holds what a change to the Dagster wiring can alter by accident (asset keys, groups, owners,
kinds, lineage, partitioning, pools, freshness policies, checks, jobs, schedules, sensors, resources) and nothing that
depends on the machine (paths, environment values). `UPDATE_DEFINITIONS_SNAPSHOT=1 make test`
rewrites it after an intended change; the diff then shows the change in review.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

SNAPSHOT_PATH = Path(__file__).with_name("definitions_snapshot.txt")


def _keys(keys: object) -> str:
    names = sorted(key.to_user_string() for key in keys)  # type: ignore[attr-defined]
    return ", ".join(names) or "-"


def _freshness(policy: dg.FreshnessPolicy | None) -> str:
    """The policy's kind and fixed parts; a cron policy's deadline is a setting
    (USAGE_FRESHNESS_DEADLINE_CRON), so it is left out like every other environment value."""
    if policy is None:
        return "-"
    fields = {
        name: getattr(policy, name)
        for name in ("lower_bound_delta", "timezone", "fail_window", "warn_window")
        if getattr(policy, name, None) is not None
    }
    return f"{type(policy).__name__} " + ", ".join(f"{k}={v}" for k, v in fields.items())


def render_definitions(defs: dg.Definitions) -> str:
    """The definitions as sorted, human-readable lines."""
    graph = defs.resolve_asset_graph()
    lines: list[str] = ["# assets"]
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        node = graph.get(spec.key)
        partitions = node.partitions_def
        lines += [
            f"asset {spec.key.to_user_string()}",
            f"  group: {spec.group_name}",
            f"  owners: {', '.join(sorted(spec.owners))}",
            f"  kinds: {', '.join(sorted(spec.kinds))}",
            f"  deps: {_keys(node.parent_keys)}",
            f"  partitions: {type(partitions).__name__ if partitions else '-'}",
            f"  backfill_policy: {node.backfill_policy.policy_type.value if node.backfill_policy else '-'}",
            f"  pools: {', '.join(sorted(node.pools)) if node.pools else '-'}",
            f"  automation: {node.automation_condition.get_label() or type(node.automation_condition).__name__ if node.automation_condition else '-'}",
            f"  table: {spec.metadata.get('dagster/table_name', '-')}",
            f"  freshness: {_freshness(node.freshness_policy)}",
        ]
    lines.append("# asset checks")
    for key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        check = graph.get_check_spec(key)
        lines.append(f"check {key.to_user_string()} blocking={check.blocking}")
    lines.append("# jobs")
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue  # Dagster's implicit asset job
        selected = job.asset_layer.asset_graph.executable_asset_keys
        executor = job.executor_def.name
        lines.append(f"job {job.name}: {_keys(selected)} (executor {executor})")
    lines.append("# schedules")
    for schedule in sorted(defs.schedules or [], key=lambda s: s.name):
        assert isinstance(schedule, dg.ScheduleDefinition)
        lines.append(
            f"schedule {schedule.name}: job {schedule.job_name},"
            f" default {schedule.default_status.value}, timezone {schedule.execution_timezone}"
        )
    lines.append("# sensors")
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        assert isinstance(sensor, dg.SensorDefinition)
        targets = sorted(t.job_name for t in sensor.targets) if sensor.targets else []
        lines.append(
            f"sensor {sensor.name}: {type(sensor).__name__}, default {sensor.default_status.value},"
            f" jobs {', '.join(targets) or '-'}"
        )
    lines.append("# resources")
    for name, resource in sorted((defs.resources or {}).items()):
        lines.append(f"resource {name}: {type(resource).__name__}")
    return "\n".join(lines) + "\n"
