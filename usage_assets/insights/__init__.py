"""Insights beyond CircleCI's own: pure functions over DuckDB that turn `circleci.job_runs` into
the `circleci_insights` tables (usage, performance, right-sizing, cost, forecast) and the report.

Each module owns one table (or two closely tied ones) and is tested on a small hand-made fixture;
the Dagster wiring lives in `usage_assets/defs/insights/`.
"""
