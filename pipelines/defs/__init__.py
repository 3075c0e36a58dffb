"""Dagster wiring, split by kind: ingest, attribution, dbt, jobs and schedules. Thin: the work is in pipelines.lib."""
