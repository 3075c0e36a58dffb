"""The lake as a step of the daily run: raw telemetry of past days moved out of the live warehouse, and retention."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.defs.resources import warehouse_connection
from pipelines.settings import current
from pipelines.warehouse.archive import ARCHIVED_TABLES, apply_retention, archive_past_days


@dg.asset(
    group_name="storage",
    kinds={"duckdb", "parquet"},
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    deps=["request_energy_pieces", "device_energy_buckets", "raw_telemetry"],
    description="Raw telemetry of days before the newest two, moved from the live warehouse to Parquet partitions "
    "under $INFERCOST_HOME/lake/raw_telemetry/day=YYYY-MM-DD/ (pipelines/warehouse/archive.py); lake days older "
    "than INFERCOST_RAW_TELEMETRY_RETENTION_DAYS are deleted, each logged (unset: all are kept).",
)
def raw_telemetry_lake(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    settings = current()
    last_day = partition_days(context)[-1]
    moved, dropped = [], []
    with warehouse_connection(duckdb) as con:
        for table in ARCHIVED_TABLES:
            moved += archive_past_days(con, table, log=context.log.info)
            dropped += apply_retention(table, settings.raw_telemetry_retention_days, last_day, log=context.log.warning)
    return dg.MaterializeResult(
        metadata={"days_moved": [str(d) for d in moved], "days_deleted": [str(d) for d in dropped]}
    )
