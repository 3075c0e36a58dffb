"""What analysts read: the technique comparison, and the copy of the warehouse published after each run."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.analysis.compare_store import compare_and_store
from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.defs.resources import warehouse_connection
from pipelines.settings import current
from pipelines.warehouse.publish import publish


@dg.asset(
    group_name="publish",
    kinds={"duckdb", "python"},
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    deps=["fct_request_cost"],
    description="Each technique's change in cost per 1M output tokens against its baseline, with a 95 % bootstrap "
    "interval, sample sizes and the latency trade-off (pipelines/analysis/compare.py).",
)
def technique_comparison(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with warehouse_connection(duckdb) as con:
        result = compare_and_store(con, window_days=current().comparison_days)
    for line in result["summary"] if len(result) else []:
        context.log.info(line)
    return dg.MaterializeResult(metadata={"comparisons": len(result)})


@dg.asset(
    group_name="publish",
    kinds={"duckdb"},
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    deps=[
        "fct_request_cost",
        "agg_daily_model_cost",
        "agg_daily_technique_cost",
        "agg_daily_device_type_cost",
        "agg_idle_cost",
        "agg_telemetry_coverage",
        "technique_savings",
        "agg_region_bucket_cost",
        "fct_electricity_prices",
        "agg_daily_label_cost",
        "cost_anomalies",
        "budget_status",
        "technique_comparison",
        "raw_telemetry_lake",
    ],
    description="A read-only copy of the whole warehouse for analysts ($INFERCOST_HOME/published/), replaced "
    "atomically after each run, so queries never wait on the pipeline's write lock; the tables that grow with every "
    "day are Parquet files by day, and a run writes only the days it changed (pipelines/warehouse/publish.py).",
)
def published_warehouse(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with warehouse_connection(duckdb) as con:
        days = partition_days(context)
        path = publish(con, days=(days[0], days[-1]))
    context.log.info(f"published {path} for {days[0]} .. {days[-1]}")
    return dg.MaterializeResult(metadata={"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 1)})
