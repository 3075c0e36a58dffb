"""Cost anomalies and budget status as daily assets, and the sensor that delivers anomalies and failed checks to people."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.analysis.anomalies import detect_and_store
from pipelines.analysis.budgets import evaluate_and_store, load_budgets
from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.defs.resources import warehouse_connection
from pipelines.outputs.alerts import collect_published, deliver, sinks_from_env
from pipelines.settings import current
from pipelines.warehouse.publish import published_path
from pipelines.warehouse.tables import create_tables


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


@dg.asset(
    group_name="alerts",
    kinds={"duckdb", "python"},
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    deps=["fct_request_cost", "agg_idle_cost"],
    description="Month-to-date spend of each budget in $INFERCOST_CONFIG_DIR/budgets.yaml, with a burn-rate "
    "forecast to the month's end (pipelines/analysis/budgets.py); the alert sensor sends the ones over or "
    "forecast over. Nothing to do when there is no budget file.",
)
def budget_status(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    path = current().config_dir / "budgets.yaml"
    if not path.exists():
        with warehouse_connection(duckdb) as con:
            create_tables(con, "budget_status")  # the table is always there for readers, empty without budgets
        return dg.MaterializeResult(metadata={"budgets": 0, "note": f"no budget file at {path}"})
    budgets = load_budgets(path)  # an unusable file fails the run with the file and entry named
    with warehouse_connection(duckdb) as con:
        status = evaluate_and_store(con, budgets, max(partition_days(context)))
    for row in status[status["status"] != "ok"].itertuples():
        context.log.warning(
            f"budget {row.budget} ({row.scope}): {row.status}, forecast {row.forecast_month_end:.2f} of "
            f"{row.limit_amount:.2f} {row.unit}"
        )
    return dg.MaterializeResult(metadata={"budgets": len(status), "not_ok": int((status["status"] != "ok").sum())})


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends new cost anomalies, budgets over or forecast over, and failed data-quality checks to the sinks configured by "
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
