"""The Dagster code location: one Definitions object (workspace.yaml loads this module)."""

import dagster as dg

from pipelines.defs.alerts import alert_sensor, budget_status, cost_anomalies
from pipelines.defs.attribution import energy_attribution
from pipelines.defs.dbt import cost_models
from pipelines.defs.ingest import fleet_files, raw_carbon, raw_prices, raw_requests, raw_telemetry
from pipelines.defs.jobs import daily_cost_job, daily_cost_schedule
from pipelines.defs.publish import published_warehouse, technique_comparison
from pipelines.defs.resources import dbt_resource, duckdb_resource, engine_resource
from pipelines.defs.storage import raw_telemetry_lake

defs = dg.Definitions(
    assets=[
        fleet_files,
        raw_requests,
        raw_telemetry,
        raw_prices,
        raw_carbon,
        energy_attribution,
        cost_models,
        cost_anomalies,
        budget_status,
        technique_comparison,
        raw_telemetry_lake,
        published_warehouse,
    ],
    jobs=[daily_cost_job],
    schedules=[daily_cost_schedule],
    sensors=[alert_sensor],
    resources={"duckdb": duckdb_resource, "dbt": dbt_resource, "engine": engine_resource},
    # one DuckDB writer at a time: steps run one after another in one process
    executor=dg.in_process_executor,
)
