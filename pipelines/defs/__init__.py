"""Dagster wiring, split by kind: ingest, attribution, dbt, jobs and schedules. Thin: the work is in the core packages (ingest, attribution, warehouse, analysis, outputs)."""
