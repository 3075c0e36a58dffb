"""Cost anomalies as a daily asset, and the sensor that delivers anomalies and failed checks to people."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.analysis.anomalies import detect_and_store
from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.defs.resources import warehouse_connection
from pipelines.outputs.alerts import collect_published, deliver, sinks_from_env
from pipelines.warehouse.publish import published_path


@dg.asset(
    group_name="alerts",
    kinds={"duckdb", "python"},
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    deps=["agg_daily_model_cost", "agg_daily_technique_cost", "agg_daily_device_type_cost"],
    description="Days whose cost per 1M output tokens, J per output token, idle share or total cost left their "
    "trailing range (median and MAD, weekday aware), with a likely cause (pipelines/analysis/anomalies.py).",
)
def cost_anomalies(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with warehouse_connection(duckdb) as con:
        found = detect_and_store(con, partition_days(context))
    for row in found.itertuples():
        context.log.warning(
            f"{row.day} {row.dimension} {row.series_key}: {row.metric} {row.observed:.4g} vs "
            f"{row.expected:.4g} expected ({row.effect_pct:+.0f} %), likely {row.likely_cause}"
        )
    return dg.MaterializeResult(metadata={"anomalies": len(found)})


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends new cost anomalies and failed data-quality checks to the sinks configured by "
    "INFERCOST_ALERT_* environment variables; each alert reaches each sink once. Reads the published copy, "
    "never the live warehouse, so it neither waits for a run nor holds one up.",
)
def alert_sensor(context: dg.SensorEvaluationContext):
    sinks = sinks_from_env()
    if not sinks:
        return dg.SkipReason("no alert sinks configured (INFERCOST_ALERT_* environment variables)")
    if not published_path().exists():
        return dg.SkipReason("no published warehouse yet")
    report = deliver(collect_published(), sinks, log=context.log.info)
    return dg.SkipReason(report.text())
